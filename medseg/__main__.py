from medseg.cli import run

run()
