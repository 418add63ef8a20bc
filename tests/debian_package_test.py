"""The Debian package: built with CPack, its dependencies resolvable by apt on Debian 12,
installable (into a scratch dpkg root), with a working binary and systemd units that
`systemd-analyze verify` accepts."""

import glob
import os
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("INTERMISSION_BUILD_DIR", "build")
UNITS = ["intermission-serve.service", "intermission-page.service", "intermission-tick.service",
         "intermission-tick.timer"]


class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        subprocess.run(["cpack", "-G", "DEB"], cwd=BUILD, check=True, capture_output=True, timeout=600)
        debs = glob.glob(os.path.join(BUILD, "intermission_*_amd64.deb"))
        assert len(debs) == 1, debs
        cls.deb = os.path.abspath(debs[0])
        cls._tmp = tempfile.TemporaryDirectory(prefix="intermission-deb-")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_dependencies_resolve_with_apt(self):
        depends = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True,
                                 text=True, check=True).stdout
        for lib in ["libcurl4", "libyaml-cpp0.7", "libsqlite3-0", "libssl3", "libpugixml1v5",
                    "libboost-json1.81.0"]:
            self.assertIn(lib, depends)
        sim = subprocess.run(["apt-get", "install", "--simulate", "--no-install-recommends", self.deb],
                             capture_output=True, text=True)
        self.assertEqual(sim.returncode, 0, sim.stdout + sim.stderr)

    def test_installs_and_its_units_verify(self):
        root = os.path.join(self._tmp.name, "root")
        for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"]:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        install = subprocess.run(["dpkg", "--root", root, "--force-depends", "--force-not-root",
                                  "--log=/dev/null", "-i", self.deb], capture_output=True, text=True)
        self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
        status = subprocess.run(["dpkg", "--root", root, "-s", "intermission"], capture_output=True, text=True)
        self.assertIn("Status: install ok installed", status.stdout)
        binary = os.path.join(root, "usr/bin/intermission")
        self.assertIn("Usage: intermission", subprocess.run([binary, "--help"], capture_output=True,
                                                             text=True).stdout)
        self.assertTrue(os.path.exists(os.path.join(root, "usr/share/doc/intermission/examples/config.yaml")))
        # systemd-analyze checks units against this system; point ExecStart at the installed copy.
        units = os.path.join(self._tmp.name, "units")
        os.makedirs(units)
        for u in UNITS:
            with open(os.path.join(root, "usr/lib/systemd/system", u)) as f:
                text = f.read().replace("/usr/bin/intermission", binary)
            if u.endswith(".service"):
                self.assertIn("DynamicUser=yes", text)
                self.assertIn("ProtectSystem=strict", text)
                self.assertIn("UMask=0077", text, u)
                self.assertIn("LimitNOFILE=", text, u)
                self.assertIn("NoNewPrivileges=yes", text, u)
                self.assertIn("CapabilityBoundingSet=\n", text, u)
                self.assertIn("SystemCallFilter=@system-service", text, u)
                # Nothing under /etc is writable: the map has a directory of its own.
                self.assertNotIn("ReadWritePaths", text, u)
                if "SupplementaryGroups=haproxy" in text:
                    # The haproxy group must not reach Debian's admin-level socket.
                    self.assertIn("InaccessiblePaths=-/run/haproxy/admin.sock\n", text, u)
            with open(os.path.join(units, u), "w") as f:
                f.write(text)
        verify = subprocess.run(["systemd-analyze", "verify", *[os.path.join(units, u) for u in UNITS]],
                                capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        serve = open(os.path.join(units, "intermission-serve.service")).read()
        self.assertIn("LoadCredential=operator-token:intermission-operator-token", serve)
        self.assertIn("LoadCredential=webhook-secret:intermission-webhook-secret", serve)
        for name in ["flux-webhook-secret", "argocd-webhook-token", "github-webhook-secret"]:
            self.assertIn(f"LoadCredential={name}:intermission-{name}", serve)
        self.assertIn("StateDirectory=intermission intermission/haproxy", serve)
        # docs/packaging.md records the scores; none may drift above 2.0.
        for u in UNITS:
            if not u.endswith(".service"):
                continue
            score = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                                    os.path.join(units, u)], capture_output=True, text=True)
            self.assertEqual(score.returncode, 0, u + "\n" + score.stdout[-400:] + score.stderr)


if __name__ == "__main__":
    unittest.main()
