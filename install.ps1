<#
.SYNOPSIS
Installs git-credential-pat for the current user and sets git up to use it for Azure DevOps.

.DESCRIPTION
Creates a virtual environment in %LOCALAPPDATA%\git-credential-pat\venv, installs the package
from the folder this script is in, writes git-credential-pat.exe (a launcher that starts Python
isolated and without site) into %LOCALAPPDATA%\git-credential-pat\bin, adds that folder to your
user PATH, and runs `git-credential-pat configure`, which sets up your global git config for
https://dev.azure.com and https://*.visualstudio.com.
No administrator rights are needed. Running it again updates the installation.
Works in Windows PowerShell 5.1 and PowerShell 7. $env:PYTHON chooses the Python (3.9 or newer).

.PARAMETER Uninstall
Removes the git config entries, the environment, the command and its PATH entry.

.PARAMETER Yes
With -Uninstall: also run `git-credential-pat logout --all` without asking (it is offered when
someone can answer, and skipped otherwise).

.PARAMETER Help
Shows this help.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\install.ps1

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\install.ps1 -Uninstall -Yes
#>
[CmdletBinding()]
param(
    [switch]$Uninstall,
    [switch]$Yes,
    [switch]$Help
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'

$Name = 'git-credential-pat'

function Stop-Install([string]$Message) {
    [Console]::Error.WriteLine("install.ps1: $Message")
    exit 1
}

function Invoke-Checked([string]$What, [scriptblock]$Command) {
    # Windows PowerShell 5.1 would turn a native command's stderr into a terminating error.
    $ErrorActionPreference = 'Continue'
    & $Command
    if ($LASTEXITCODE -ne 0) {
        Stop-Install "$What failed (exit code $LASTEXITCODE)"
    }
}

function Test-Python([string]$Command, [string[]]$Arguments) {
    # The interpreter's own path, or nothing when it is missing or older than 3.9 (the Microsoft
    # Store's python.exe placeholder fails here too).
    $ErrorActionPreference = 'Continue'
    if (-not (Get-Command $Command -ErrorAction SilentlyContinue)) {
        return $null
    }
    $code = 'import sys; sys.version_info >= (3, 9) and print(sys.executable)'
    $path = & $Command @Arguments -c $code 2>$null
    if ($LASTEXITCODE -eq 0 -and $path) {
        return "$path".Trim()
    }
    return $null
}

function Find-Python {
    $chosen = [Environment]::GetEnvironmentVariable('PYTHON')
    if ($chosen) {
        return Test-Python $chosen @()
    }
    $python = Test-Python 'py' @('-3')
    if (-not $python) {
        $python = Test-Python 'python' @()
    }
    return $python
}

# The user PATH is read and written raw: [Environment]::GetEnvironmentVariable expands %NAMES%, and
# writing that back would freeze them. The throwaway variable set afterwards makes Windows tell
# running programs that the environment changed, so new terminals see the new PATH.
function Get-UserPath {
    $raw = (Get-Item 'HKCU:\Environment').GetValue('Path', '', 'DoNotExpandEnvironmentNames')
    $raw -split ';' | Where-Object { $_ }  # callers wrap it in @(): one entry would be a string
}

function Set-UserPath([string[]]$Entries) {
    $value = $Entries -join ';'
    Set-ItemProperty -Path 'HKCU:\Environment' -Name 'Path' -Value $value -Type ExpandString
    [Environment]::SetEnvironmentVariable('GIT_CREDENTIAL_PAT_INSTALL', '1', 'User')
    [Environment]::SetEnvironmentVariable('GIT_CREDENTIAL_PAT_INSTALL', $null, 'User')
}

function Install-Helper {
    $python = Find-Python
    if (-not $python) {
        Stop-Install 'needs Python 3.9 or newer: install it from python.org, or set $env:PYTHON'
    }
    Write-Host "Installing $Name into $Venv..."
    $venvPython = Join-Path $Venv 'Scripts\python.exe'
    if (-not (Test-Python $venvPython @())) {  # missing, or its Python was uninstalled
        Invoke-Checked 'creating the virtual environment' { & $python -m venv --clear $Venv }
    }
    # setuptools builds in .\build and never empties it: a module deleted since would come back.
    Remove-Item -Recurse -Force -ErrorAction SilentlyContinue (Join-Path $PSScriptRoot 'build')
    Invoke-Checked 'pip install' {
        & $venvPython -m pip install --quiet --disable-pip-version-check $PSScriptRoot
    }
    # git looks for helpers as .exe files on PATH (not .cmd or .ps1). The launcher is pip's own
    # console launcher, which runs the environment's python.exe by its full path from any folder,
    # here with -IS so that every fetch starts Python without site; -I below makes the module
    # come from the environment, not from this folder.
    New-Item -ItemType Directory -Force -Path $BinDir | Out-Null
    Invoke-Checked 'writing the launcher' {
        & $venvPython -I -m git_credential_pat.launcher $Exe
    }

    $entries = @(Get-UserPath)
    if ($entries -notcontains $BinDir) {
        Set-UserPath ($entries + $BinDir)
        Write-Host "Added $BinDir to your user PATH; terminals opened from now on find $Name."
    }
    if (($env:Path -split ';') -notcontains $BinDir) {
        $env:Path = "$BinDir;$env:Path"
    }
    Invoke-Checked "$Name configure" { & $Exe configure }
    Write-Host ''
    Write-Host 'Done. In a new terminal, clone an Azure DevOps repository; you sign in once:'
    Write-Host '  git clone https://dev.azure.com/ORG/PROJECT/_git/REPO'
}

function Uninstall-Helper {
    if (-not (Test-Path $Exe)) {
        Write-Host "$Name is not installed here; nothing to remove."
        return
    }
    $logout = [bool]$Yes
    if (-not $Yes -and [Environment]::UserInteractive -and -not [Console]::IsInputRedirected) {
        $answer = Read-Host "Also sign out and forget its PATs ($Name logout --all)? [y/N]"
        $logout = $answer -match '^[yY]'
    }
    if ($logout) {
        Invoke-Checked "$Name logout --all (nothing was removed)" { & $Exe logout --all }
    } else {
        Write-Host 'Kept its sign-ins and PATs in your keyring; the PATs lapse when they expire.'
    }
    Invoke-Checked "$Name unconfigure" { & $Exe unconfigure }
    Set-UserPath @(Get-UserPath | Where-Object { $_ -ne $BinDir })
    Remove-Item -Recurse -Force $Venv, $BinDir -ErrorAction SilentlyContinue
    if (-not (Get-ChildItem -Force $Root)) {
        Remove-Item -Force $Root  # only when nothing else is kept there
    }
    Write-Host "Removed $Name."
}

if ($Help) {
    Get-Help $PSCommandPath -Detailed
    exit 0
}
if ([Environment]::OSVersion.Platform -ne 'Win32NT') {
    Stop-Install 'this script is for Windows; on Linux and macOS run ./install.sh'
}
if (-not (Get-Command git -ErrorAction SilentlyContinue)) {
    Stop-Install 'git is missing: install Git for Windows first, then rerun'
}
$Root = Join-Path $env:LOCALAPPDATA $Name
$Venv = Join-Path $Root 'venv'
$BinDir = Join-Path $Root 'bin'
$Exe = Join-Path $BinDir "$Name.exe"

if ($Uninstall) {
    Uninstall-Helper
} else {
    Install-Helper
}
