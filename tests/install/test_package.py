"""scripts/package, as a cluster's packager runs it: the Debian package's name, control fields
(Package, Version, Architecture, the Depends of the libraries the programs load, the Recommends of
the programs the runner and templates run) and contents; then the package extracted with
dpkg-deb -x into a scratch root (never dpkg -i) and the smoke job run from there.

Environment: RUNNER_SOURCE_DIR, RUNNER_BUILD_DIR, RUNNER_VERSION.
"""
import os
import re
import tempfile
import unittest

from installed import BUILD_DIR, LAYOUT, SOURCE_DIR, InstalledChecks, run

VERSION = os.environ.get("RUNNER_VERSION", "")

# Control field -> patterns each must match (a package name, or alternatives of one).
CONTROL = [
    ("Package", [r"^cluster-runner$"]),
    ("Version", [rf"^{re.escape(VERSION)}$"]),
    ("Depends", [r"\blibtorch[0-9.]+\b", r"\blibopenmpi3\b", r"\blibyaml-cpp[0-9.]+\b",
                 r"\blibspdlog[0-9.]+\b", r"\blibfmt[0-9]+\b",
                 r"\blibboost-program-options[0-9.]+\b", r"\bzlib1g\b", r"\blibc6\b",
                 r"\blibstdc\+\+6\b"]),
    ("Recommends", [r"\bopenmpi-bin\b", r"\belfutils \| gdb\b", r"\blibopenblas0-pthread\b"]),
    ("Maintainer", [r".+ <.+@.+>"]),
]


class PackageTest(unittest.TestCase, InstalledChecks):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="package-test-")
        cls.tmp = cls.tmpdir.name
        # OUTDIR relative to where the packager stands, not to the repository.
        result = run([os.path.join(SOURCE_DIR, "scripts/package"), "out"], cwd=cls.tmp,
                     env=dict(os.environ, BUILD_DIR=BUILD_DIR), timeout=600)
        if result.returncode != 0:
            raise AssertionError(f"scripts/package failed:\n{result.stdout}")
        cls.deb = result.stdout.splitlines()[-1]
        if os.path.dirname(cls.deb) != os.path.join(os.path.realpath(cls.tmp), "out"):
            raise AssertionError(f"the package is not in the caller's out/: {cls.deb}")
        cls.arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        cls.root = os.path.join(cls.tmp, "root")
        extracted = run(["dpkg-deb", "-x", cls.deb, cls.root])
        if extracted.returncode != 0:
            raise AssertionError(f"dpkg-deb -x {cls.deb}:\n{extracted.stdout}")
        cls.prefix = os.path.join(cls.root, "usr")

    @classmethod
    def tearDownClass(cls):
        cls.tmpdir.cleanup()

    def test_file_name_from_the_project_version(self):
        self.assertEqual(os.path.basename(self.deb), f"cluster-runner_{VERSION}_{self.arch}.deb")
        self.assertEqual(os.path.dirname(self.deb), os.path.join(self.tmp, "out"))

    def test_control_fields(self):
        for field, patterns in CONTROL + [("Architecture", [rf"^{self.arch}$"])]:
            value = run(["dpkg-deb", "-f", self.deb, field]).stdout.strip()
            for pattern in patterns:
                with self.subTest(field=field, pattern=pattern):
                    self.assertRegex(value, pattern, f"{field}: {value}")

    def test_contents_under_usr_owned_by_root(self):
        listing = run(["dpkg-deb", "-c", self.deb]).stdout
        entries = {}
        for line in listing.splitlines():
            fields = line.split()
            entries[fields[5].rstrip("/")] = (fields[0], fields[1])
        for path in LAYOUT:
            self.assertIn(f"./usr/{path}", entries, f"dpkg-deb -c:\n{listing}")
        for path, (mode, owner) in entries.items():
            self.assertTrue(path == "." or path.startswith("./usr"), path)
            self.assertEqual(owner, "root/root", path)
        self.assertTrue(entries["./usr/bin/runner"][0].startswith("-rwxr-xr-x"))

    def test_extracted_layout_and_nothing_names_the_build_tree(self):
        self.check_layout()
        self.check_names_no_tree()

    def test_smoke_job_from_the_extracted_package(self):
        self.run_smoke_job()



class PackageArgumentsTest(unittest.TestCase):
    def test_a_debug_build_is_refused_naming_it_and_the_fix(self):
        with tempfile.TemporaryDirectory(prefix="package-args-") as tmp:
            os.makedirs(os.path.join(tmp, "dbg"))
            with open(os.path.join(tmp, "dbg", "CMakeCache.txt"), "w") as f:
                f.write("CMAKE_BUILD_TYPE:STRING=Debug\n")
            result = run([os.path.join(SOURCE_DIR, "scripts/package"), "out"], cwd=tmp,
                         env=dict(os.environ, BUILD_DIR="dbg"))
            self.assertEqual(result.returncode, 1, result.stdout)
            self.assertIn(f"package: {os.path.realpath(tmp)}/dbg is configured with "
                          "CMAKE_BUILD_TYPE='Debug'", result.stdout)
            self.assertIn("-DCMAKE_BUILD_TYPE=RelWithDebInfo", result.stdout)
            self.assertFalse(os.path.exists(os.path.join(tmp, "out")))

    def test_a_second_argument_is_refused(self):
        with tempfile.TemporaryDirectory(prefix="package-args-") as tmp:
            result = run([os.path.join(SOURCE_DIR, "scripts/package"), "out", "extra"], cwd=tmp)
            self.assertEqual(result.returncode, 2, result.stdout)
            self.assertIn("package: expected at most one argument, OUTDIR (got 2)", result.stdout)
            self.assertFalse(os.path.exists(os.path.join(tmp, "out")))


if __name__ == "__main__":
    unittest.main()
