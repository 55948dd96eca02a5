# The two Quick start commands (README): `make demo` and `make test`. Both install what they need.
.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	@npm test --silent

bench: setup
	@npm run bench --silent

clean:
	rm -rf dist
