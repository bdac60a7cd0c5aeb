from aiospark.cli import main

main()
