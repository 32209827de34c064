"""`cmake --install build --prefix P`, as a site installs the project: the layout, then the
prefix moved elsewhere (relocation) and used from there: nothing names the build or source tree
or the first prefix, the smoke job runs, each sbatch template's dry run finds the installed runner
and config; the man pages against the programs (every config key and default of the schema,
every flag and exit code of --help); the modulefile, evaluated by tclsh.

Environment: CMAKE_BIN, RUNNER_SOURCE_DIR, RUNNER_BUILD_DIR, RUNNER_VERSION.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from installed import BUILD_DIR, TEMPLATES, InstalledChecks, read_text, run

CMAKE = os.environ.get("CMAKE_BIN", "cmake")
VERSION = os.environ.get("RUNNER_VERSION", "")

# Stand-ins for environment-modules' commands: each prints what it would do.
MODULE_HARNESS = r"""
set ModulesCurrentModulefile [lindex $argv 0]
set mode [lindex $argv 1]
proc module-info {what args} {
  global mode
  if {$what eq "mode"} {
    if {[llength $args]} { return [expr {[lindex $args 0] eq $mode}] }
    return $mode
  }
  return ""
}
proc module-whatis {args} {}
proc conflict {args} {}
proc setenv {name value} { puts "setenv $name $value" }
proc prepend-path {name value} { puts "prepend-path $name $value" }
proc append-path {name value} { puts "append-path $name $value" }
if {[catch {source $ModulesCurrentModulefile} message]} { puts "error: $message"; exit 1 }
ModulesHelp
"""


def unroff(text):
    return text.replace("\\-", "-").replace("\\e", "\\")


def help_sections(text):
    """Flags (--name) and exit codes ('N  meaning') of a program's --help."""
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
    codes = re.findall(r"^ +(\d+)  (\S.*)$", text.split("Exit codes:")[-1], re.M)
    return flags, codes


class InstallTest(unittest.TestCase, InstalledChecks):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="install-test-")
        cls.tmp = cls.tmpdir.name
        cls.first = os.path.join(cls.tmp, "stage")
        result = run([CMAKE, "--install", BUILD_DIR, "--prefix", cls.first])
        if result.returncode != 0:
            raise AssertionError(f"cmake --install failed:\n{result.stdout}")
        # Relocation: the site moves the tree somewhere else; the first prefix is gone.
        cls.prefix = os.path.join(cls.tmp, "moved", "cluster-runner", VERSION)
        os.makedirs(os.path.dirname(cls.prefix))
        subprocess.run(["cp", "-a", cls.first, cls.prefix], check=True)
        shutil.rmtree(cls.first)

    @classmethod
    def tearDownClass(cls):
        cls.tmpdir.cleanup()

    def test_layout_and_nothing_names_the_build_tree_or_the_first_prefix(self):
        self.check_layout()
        self.check_names_no_tree(self.first)

    def test_smoke_job_from_the_moved_prefix(self):
        self.run_smoke_job()

    def test_sbatch_templates_dry_run_from_the_moved_prefix(self):
        for template, config in TEMPLATES:
            with self.subTest(template=template):
                self.template_dry_run(template, config)

    def runner_output(self, *args):
        result = run([os.path.join(self.prefix, "bin/runner"), *args])
        self.assertEqual(result.returncode, 0, result.stdout)
        return result.stdout

    def test_config_man_page_has_every_key_with_its_default(self):
        keys = re.findall(r"^\| `([a-z_.]+)` \| .* \| `(.*)` \| .* \|$",
                          self.runner_output("--list-keys"), re.M)
        self.assertGreater(len(keys), 30, "runner --list-keys lists the schema's keys")
        page = read_text(os.path.join(self.prefix, "share/man/man5/runner-config.5"))
        entries = {}
        for entry in page.split(".TP\n.B ")[1:]:
            name, _, body = entry.partition("\n")
            entries[unroff(name)] = unroff(body)
        self.assertEqual(sorted(entries), sorted(k for k, _ in keys),
                         "runner-config(5) must document exactly the schema's keys")
        for key, default in keys:
            self.assertIn(f"Default: \\fB{default}\\fR.", entries[key], key)
            env_name = "RUNNER_" + key.replace(".", "__", 1).upper()
            self.assertIn(f"Environment: \\fB{env_name}\\fR", entries[key], key)

    def test_man_pages_have_every_flag_and_exit_code(self):
        runner = self.runner_output("--help")
        operator = self.runner_output("status", "--help") + self.runner_output("logs", "--help")
        trainer = run([os.path.join(self.prefix, "bin/trainer"), "--help"]).stdout
        for page, text, more in (("man1/runner.1", runner, operator),
                                 ("man1/trainer.1", trainer, "")):
            with self.subTest(page=page):
                man = unroff(read_text(os.path.join(self.prefix, "share/man", page)))
                flags, codes = help_sections(text)
                flags |= help_sections(more)[0]
                self.assertGreater(len(flags), 3, text)
                self.assertEqual(sorted(f for f in flags if f not in man), [],
                                 f"{page} should name every flag of --help")
                self.assertGreater(len(codes), 5, text)
                for code, meaning in codes:
                    self.assertIn(f".B {code}\n{meaning}\n", man, f"{page}: exit code {code}")

    def test_man_pages_render_without_warnings(self):
        for page in ("man1/runner.1", "man1/trainer.1", "man5/runner-config.5"):
            with self.subTest(page=page):
                result = subprocess.run(
                    ["groff", "-man", "-Tutf8", "-ww", "-z",
                     os.path.join(self.prefix, "share/man", page)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
                self.assertEqual((result.returncode, result.stderr), (0, ""), page)

    def module(self, modulefile, mode, **env):
        result = run(["tclsh", "/dev/stdin", modulefile, mode], input=MODULE_HARNESS,
                     env=dict(os.environ, **env))
        return result.returncode, result.stdout

    def test_modulefile_serves_its_prefix_or_the_site_layout(self):
        installed = os.path.join(self.prefix, "share/cluster-runner/modulefiles/cluster-runner",
                                 VERSION)
        rc, out = self.module(installed, "load", CLUSTER_RUNNER_ROOT="", MANPATH="")
        self.assertEqual(rc, 0, out)
        self.assertIn("append-path MANPATH \n", out, "man's default places must stay searched")
        self.assertIn(f"prepend-path PATH {self.prefix}/bin\n", out)
        self.assertIn(f"prepend-path MANPATH {self.prefix}/share/man\n", out)
        self.assertIn(f"setenv CLUSTER_RUNNER_ROOT {self.prefix}\n", out)
        # Copied to a site's modulefiles: /opt/cluster-runner/<version>, or CLUSTER_RUNNER_ROOT.
        site = os.path.join(self.tmp, "modulefiles", "cluster-runner")
        os.makedirs(site, exist_ok=True)
        copy = os.path.join(site, VERSION)
        shutil.copy(installed, copy)
        rc, out = self.module(copy, "display", CLUSTER_RUNNER_ROOT="")
        self.assertEqual(rc, 0, out)
        self.assertIn(f"prepend-path PATH /opt/cluster-runner/{VERSION}/bin\n", out)
        if not os.path.exists(f"/opt/cluster-runner/{VERSION}/bin/runner"):
            rc, out = self.module(copy, "load", CLUSTER_RUNNER_ROOT="")
            self.assertEqual(rc, 1, out)
            self.assertIn(f"no runner at /opt/cluster-runner/{VERSION}/bin/runner", out)
        rc, out = self.module(copy, "load", CLUSTER_RUNNER_ROOT=self.prefix)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"prepend-path PATH {self.prefix}/bin\n", out)


if __name__ == "__main__":
    unittest.main()
