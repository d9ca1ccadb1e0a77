# SPDX-License-Identifier: GPL-2.0-only
"""Controller side of suture_patch: picks the build for the host's kernel and copies it there."""

import glob
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

MODULE = "suture.livepatch.suture_patch"
SUFFIXES = (".ko", ".ko.xz", ".ko.zst")


def module_name(path):
    base = os.path.basename(path)
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)].replace("-", "_")
    return base.replace("-", "_")


def pick_build(src, release, name):
    """The module file for RELEASE: SRC itself, or one of SRC/RELEASE/*.ko; None when there is none."""
    if os.path.isfile(src):
        return src
    if not os.path.isdir(src):
        raise AnsibleActionFail("src %s is neither a module file nor a folder of builds" % src)
    builds = sorted(p for p in glob.glob(os.path.join(src, release, "*")) if p.endswith(SUFFIXES))
    if name is not None:
        builds = [p for p in builds if module_name(p) == name.replace("-", "_")]
    if len(builds) > 1:
        raise AnsibleActionFail(
            "%s holds several builds for %s (%s): name one with name="
            % (src, release, ", ".join(os.path.basename(p) for p in builds))
        )
    return builds[0] if builds else None


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        state = args.get("state", "installed")
        src = args.get("src")
        if src is None or (state == "absent" and args.get("name") is not None):
            args.pop("src", None)
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        uname = self._low_level_execute_command("uname -r")
        release = uname.get("stdout", "").strip()
        if uname.get("rc") != 0 or not release:
            raise AnsibleActionFail("uname -r failed on the host: %s" % uname.get("stderr", ""))
        local = self._loader.path_dwim(os.path.expanduser(src))
        build = pick_build(local, release, args.get("name"))
        if build is None:
            result.update(
                skipped=True,
                changed=False,
                no_build=True,
                release=release,
                msg="no build for kernel %s in %s" % (release, local),
            )
            return result

        if args.get("name") is None:
            args["name"] = module_name(build)
        if state == "absent":
            args.pop("src", None)
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            result["build"] = build
            return result

        try:
            if not self._connection._shell.tmpdir:
                self._make_tmp_path()
            remote = self._connection._shell.join_path(self._connection._shell.tmpdir, os.path.basename(build))
            self._transfer_file(build, remote)
            self._fixup_perms2((self._connection._shell.tmpdir, remote))
            args["src"] = remote
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            result["build"] = build
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
