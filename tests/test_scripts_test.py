#!/usr/bin/env python3
"""The integration test scripts themselves: a test that never runs guards nothing.

aws_fake_test.py once defined its Classic ELB class after `unittest.main()`, which exits: the
class never ran, and ctest said the file passed. Each *_test.py here must be registered in
tests/CMakeLists.txt and end with its `if __name__ == "__main__"` block, with no test class or
function after it. And all the Python of the repository (tests, fakes, benchmarks, scripts)
passes pyflakes (Debian's python3-pyflakes): an undefined name in a branch that rarely runs is
found here, not when that branch finally runs in CI."""

import ast
import io
import os
import re
import unittest

from pyflakes.api import check, checkPath
from pyflakes.reporter import Reporter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Where the repository keeps Python; tests/tools is npm's (node_modules), not ours.
PYTHON_DIRS = ["bench", "scripts", "testing", "tests"]


def python_files():
    for d in PYTHON_DIRS:
        for top, dirs, files in os.walk(os.path.join(ROOT, d)):
            dirs[:] = [x for x in dirs if x not in ("tools", "__pycache__")]
            yield from (os.path.join(top, f) for f in sorted(files) if f.endswith(".py"))


def is_main_block(node):
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def scripts():
    return sorted(f for f in os.listdir(HERE) if f.endswith("_test.py"))


class TestScripts(unittest.TestCase):
    def test_each_script_ends_with_its_main_block(self):
        for name in scripts():
            with self.subTest(script=name):
                with open(os.path.join(HERE, name), encoding="utf-8") as f:
                    body = ast.parse(f.read(), filename=name).body
                mains = [i for i, node in enumerate(body) if is_main_block(node)]
                self.assertEqual(len(mains), 1, f"{name}: one `if __name__ == \"__main__\"` block")
                after = [n.name for n in body[mains[0] + 1:]
                         if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
                self.assertEqual(mains[0], len(body) - 1,
                                 f"{name}: defined after unittest.main(), never run: {after}")

    def test_each_script_is_registered_with_ctest(self):
        with open(os.path.join(HERE, "CMakeLists.txt"), encoding="utf-8") as f:
            cmake = f.read()
        registered = set(re.findall(r"\b(\w+_test\.py)\b", cmake))
        self.assertEqual(sorted(set(scripts()) - registered), [],
                         "scripts that ctest never runs")

    def test_scripts_run_by_class_list_every_class_with_tests(self):
        """A script that ctest runs one class at a time (`intermission_integration_test(name
        script CLASSES ...)` in CMakeLists.txt): a class with tests left out of the list would
        never run."""
        with open(os.path.join(HERE, "CMakeLists.txt"), encoding="utf-8") as f:
            cmake = f.read()
        lists = dict(re.findall(r"set\((\w+) ([^)]*)\)", cmake))
        by_class = [(re.sub(r"\$\{(\w+)\}", lambda m: lists[m.group(1)], parts), name) for name, parts in
                    re.findall(r"intermission_integration_test\(\w+ (\w+_test\.py) CLASSES ([^)]*)\)", cmake)]
        self.assertGreaterEqual(len(by_class), 3, "the per-class registrations were not found")
        for parts, name in by_class:
            with self.subTest(script=name):
                with open(os.path.join(HERE, name), encoding="utf-8") as f:
                    body = ast.parse(f.read(), filename=name).body
                with_tests = {n.name for n in body if isinstance(n, ast.ClassDef) and any(
                    isinstance(m, ast.FunctionDef) and m.name.startswith("test_") for m in n.body)}
                self.assertEqual(sorted(with_tests - set(parts.split())), [],
                                 f"{name}: classes ctest never runs")

    def test_all_python_passes_pyflakes(self):
        out, err = io.StringIO(), io.StringIO()
        files = list(python_files())
        self.assertIn(os.path.join(HERE, "harness.py"), files)
        found = sum(checkPath(f, Reporter(out, err)) for f in files)
        self.assertEqual(err.getvalue(), "")
        self.assertEqual(found, 0, out.getvalue())

    def test_pyflakes_sees_an_undefined_name(self):
        out = io.StringIO()
        found = check("def f():\n    return undefined_name\n", "probe.py", Reporter(out, io.StringIO()))
        self.assertEqual(found, 1)
        self.assertIn("undefined name 'undefined_name'", out.getvalue())

    def test_the_check_sees_a_class_after_main(self):
        body = ast.parse("import unittest\nif __name__ == '__main__':\n    unittest.main()\n"
                         "class Late(unittest.TestCase):\n    pass\n").body
        mains = [i for i, node in enumerate(body) if is_main_block(node)]
        self.assertEqual(mains, [1])
        self.assertNotEqual(mains[0], len(body) - 1)


if __name__ == "__main__":
    unittest.main()
