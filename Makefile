# Shortcuts; the README's two commands are scripts/demo.sh and scripts/test.sh.
.PHONY: demo test setup bench sample clean

demo:
	scripts/demo.sh

test:
	scripts/test.sh

setup:
	scripts/setup.sh --test

bench: setup
	.venv/bin/python bench/load.py && .venv/bin/python bench/api.py

sample: setup
	.venv/bin/gisplatform sample generate --out sample

clean:
	rm -rf .venv var bench/data bench/out test-output
