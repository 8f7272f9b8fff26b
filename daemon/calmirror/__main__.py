from calmirror.cli.main import run

run()
