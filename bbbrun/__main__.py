from bbbrun.entry import main

main()
