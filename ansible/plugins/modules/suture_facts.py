#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Facts about a host's live patches, from Suture's JSON and /sys."""

DOCUMENTATION = r"""
module: suture_facts
short_description: Gather live-patching facts with Suture
description:
  - Sets C(ansible_facts.suture) from C(suture list --json), C(suture list --installed --json) and
    /sys: the running kernel, the loaded patches (name, state, enabled, transition, file), the
    patches installed for the running kernel (name, state, sha256, installedAt), whether the kernel
    can live-patch (C(/sys/kernel/livepatch)), its lockdown mode and its taint.
  - Changes nothing; check mode is supported.
options:
  suture:
    description: The suture binary on the managed host.
    type: str
    default: suture
supports_check_mode: true
"""

RETURN = r"""
ansible_facts:
  description: C(suture) with release, livepatch, lockdown, taint, loaded, installed, not_loaded, not_installed, version.
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def lockdown_mode():
    """The selected mode of /sys/kernel/security/lockdown ("none [integrity] confidentiality")."""
    text = read("/sys/kernel/security/lockdown")
    if text is None:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def main():
    module = AnsibleModule(argument_spec=dict(suture=dict(type="str", default="suture")), supports_check_mode=True)
    suture = module.params["suture"]

    def run(args):
        rc, out, err = module.run_command([suture] + args + ["--json"])
        try:
            data = json.loads(out)
        except ValueError:
            module.fail_json(msg="suture %s printed no JSON (exit %d): %s" % (" ".join(args), rc, (out + err).strip()))
        if "error" in data:
            module.fail_json(msg="suture %s: %s" % (" ".join(args), data["error"].get("message")), suture_error=data["error"])
        return data

    listed = run(["list"])
    store = run(["list", "--installed"])
    rc, version, _ = module.run_command([suture, "--version"])
    taint = read("/proc/sys/kernel/tainted")
    facts = dict(
        release=os.uname().release,
        livepatch=os.path.isdir("/sys/kernel/livepatch"),
        lockdown=lockdown_mode(),
        taint=int(taint) if taint and taint.isdigit() else None,
        loaded=[
            dict(
                name=p.get("name"),
                state=p.get("state"),
                enabled=p.get("enabled"),
                transition=p.get("transition"),
                file=p.get("file"),
            )
            for p in listed.get("patches", [])
        ],
        installed=[
            dict(
                name=p.get("name"),
                state=p.get("state"),
                sha256=p.get("sha256"),
                installed_at=p.get("installedAt"),
                source=p.get("source"),
            )
            for p in store.get("installed", [])
        ],
        not_loaded=store.get("notLoaded", []),
        not_installed=store.get("notInstalled", []),
        store=store.get("directory"),
        version=version.strip() if rc == 0 else None,
    )
    module.exit_json(changed=False, ansible_facts=dict(suture=facts))


if __name__ == "__main__":
    main()
