@echo off
rem Windows: double-click this file to start the Neural Network Visualizer (see README.txt).
rem Finds Python 3.7 or newer ("py" launcher first, then "python") and runs start.py with it.
setlocal
cd /d "%~dp0"
set "PY="
py -3 -c "import sys; sys.exit(sys.version_info < (3, 7))" >nul 2>&1
if not errorlevel 1 set "PY=py -3"
if defined PY goto run
python -c "import sys; sys.exit(sys.version_info < (3, 7))" >nul 2>&1
if not errorlevel 1 set "PY=python"
if defined PY goto run
echo The Neural Network Visualizer needs Python 3 (3.7 or newer), and none was found on this computer.
echo Install it from python.org (tick "Add python.exe to PATH"), then double-click start.bat again.
pause
exit /b 1
:run
%PY% start.py %*
pause
