#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Load, install or remove one live patch with Suture on the managed host."""

DOCUMENTATION = r"""
module: suture_patch
short_description: Load, install or remove a live patch with Suture
description:
  - Runs C(suture load), C(suture install), C(suture unload) and C(suture uninstall) with C(--json)
    on the managed host, after reading what is loaded and installed with C(suture list --json) and
    C(suture list --installed --json), so that a second run changes nothing.
  - The action plugin of the same name picks the module file on the controller (a C(.ko), or in a
    folder of per-release builds as C(suture build --kernel A --kernel B -o DIR) writes them,
    C(DIR/RELEASE/*.ko), the one for the host's running kernel) and copies it to the host.
    A host whose kernel has no build is skipped, with the reason in C(msg) and C(no_build=true).
options:
  state:
    description:
      - C(loaded) loads the patch into the running kernel (C(suture load)).
      - C(installed) also keeps it for the running kernel, so that C(suture.service) loads it at boot
        (C(suture install)); the boot unit is written and enabled when it is missing.
      - C(absent) unloads it and removes it from the store (C(suture unload), C(suture uninstall)).
      - The module file is kept on the host in C(/var/cache/suture-ansible/NAME-SHA256.ko), the file it
        is loaded from (Suture tells a loaded patch by that file); C(absent) removes it.
    choices: [loaded, installed, absent]
    default: installed
    type: str
  src:
    description:
      - The module file, or a folder of per-release builds, on the controller. Needed unless
        C(state=absent).
    type: path
  name:
    description:
      - The patch's module name (C(livepatch_fix)). Defaults to the file name of the build with
        C(-) made C(_) and without C(.ko).
    type: str
  timeout:
    description: Seconds to wait for each transition (C(--timeout)).
    type: float
    default: 30
  boot_unit:
    description: With C(state=installed), write the boot unit (C(suture install --unit)) when it is missing.
    type: bool
    default: true
  suture:
    description: The suture binary on the managed host.
    type: str
    default: suture
supports_check_mode: true
"""

RETURN = r"""
suture:
  description: Suture's JSON of every command run, by command (load, install, unit, unload, uninstall).
  type: dict
patches:
  description: The loaded patches afterwards, as C(suture list --json) prints them.
  type: list
installed:
  description: The store afterwards, as C(suture list --installed --json) prints it.
  type: dict
release:
  description: The running kernel release.
  type: str
"""

import glob
import hashlib
import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def run_json(module, args, check=True):
    """Runs `suture ARGS --json` and returns its JSON; a Suture error fails the task with its code."""
    command = [module.params["suture"]] + args + ["--json"]
    rc, out, err = module.run_command(command)
    try:
        data = json.loads(out) if out.strip() else {}
    except ValueError:
        module.fail_json(msg="%s printed no JSON (exit %d): %s" % (" ".join(command), rc, (out + err).strip()))
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        module.fail_json(
            msg="%s: %s" % (" ".join(command), error.get("message")), suture_error=error, rc=rc, stderr=err
        )
    if check and rc != 0:
        module.fail_json(msg="%s exited %d: %s" % (" ".join(command), rc, err.strip()), rc=rc, suture=data)
    return data


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def module_name(path):
    base = os.path.basename(path)
    for suffix in (".ko.xz", ".ko.zst", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


# Where loaded modules are kept on the host: Suture recognizes a loaded patch by the file it was
# loaded from, so that file must outlive Ansible's temporary folder.
STAGE = "/var/cache/suture-ansible"


def staged_path(src, name, digest):
    suffix = next((s for s in (".ko.xz", ".ko.zst") if src.endswith(s)), ".ko")
    return os.path.join(STAGE, "%s-%s%s" % (name, digest[:16], suffix))


def staged_files(name):
    return sorted(glob.glob(os.path.join(STAGE, glob.escape(name) + "-*.ko*")))


def stage(src, path):
    """Copies SRC to PATH (atomically) unless it is there already."""
    if os.path.exists(path):
        return
    os.makedirs(STAGE, mode=0o700, exist_ok=True)
    partial = path + ".partial"
    shutil.copyfile(src, partial)
    os.rename(partial, path)


def unit_present():
    return any(
        os.path.exists(os.path.join(d, "suture.service"))
        for d in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="installed", choices=["loaded", "installed", "absent"]),
            src=dict(type="path"),
            name=dict(type="str"),
            timeout=dict(type="float", default=30),
            boot_unit=dict(type="bool", default=True),
            suture=dict(type="str", default="suture"),
        ),
        required_if=[("state", "loaded", ["src"]), ("state", "installed", ["src"])],
        required_one_of=[("src", "name")],
        supports_check_mode=True,
    )
    state, src = module.params["state"], module.params["src"]
    name = module.params["name"] or module_name(src)
    timeout = "%g" % module.params["timeout"]
    if src is not None and state != "absent" and not os.path.isfile(src):
        module.fail_json(msg="no module file %s on the host" % src)

    listed = run_json(module, ["list"])
    store = run_json(module, ["list", "--installed"])
    loaded = {p["name"]: p for p in listed.get("patches", [])}
    stored = {p["name"]: p for p in store.get("installed", [])}
    release = store.get("release")
    patch, entry = loaded.get(name), stored.get(name)
    digest = sha256(src) if src is not None and state != "absent" else None
    staged = staged_path(src, name, digest) if digest else None

    # What has to happen, from what is there now.
    steps = []
    if state == "loaded":
        if patch is None or not patch.get("enabled"):
            steps.append("load")
    elif state == "installed":
        if module.params["boot_unit"] and not unit_present():
            steps.append("unit")
        if entry is None or entry.get("sha256") != digest or entry.get("state") != "loaded":
            steps.append("install")
    else:
        if patch is not None:
            steps.append("unload")
        if entry is not None:
            steps.append("uninstall")
        if staged_files(name):
            steps.append("forget")

    result = dict(changed=bool(steps), name=name, release=release, steps=steps, suture={})
    if module.check_mode or not steps:
        result.update(patches=listed.get("patches", []), installed=store)
        module.exit_json(**result)

    if staged:
        stage(src, staged)
        result["file"] = staged
    for step in steps:
        if step == "load":
            result["suture"]["load"] = run_json(module, ["load", staged, "--timeout", timeout])
        elif step == "unit":
            result["suture"]["unit"] = run_json(module, ["install", "--unit"])
        elif step == "install":
            result["suture"]["install"] = run_json(module, ["install", staged, "--timeout", timeout])
        elif step == "unload":
            result["suture"]["unload"] = run_json(module, ["unload", name, "--timeout", timeout])
        elif step == "uninstall":
            result["suture"]["uninstall"] = run_json(module, ["uninstall", name])
        elif step == "forget":
            for path in staged_files(name):
                os.remove(path)
    result["patches"] = run_json(module, ["list"]).get("patches", [])
    result["installed"] = run_json(module, ["list", "--installed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
