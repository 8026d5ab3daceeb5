from bbbrun.cli import main

main()
