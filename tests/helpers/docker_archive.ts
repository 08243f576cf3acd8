/**
 * Test helper: a docker-archive (what `docker save` writes and `ctr image import` and
 * `podman load` read) of a root filesystem directory: one layer, a config, a manifest, written
 * with the test tar builder (image_tar.ts).
 */
import { createHash } from "node:crypto";
import { makeTar, type TarSpec } from "./image_tar.ts";

/** The members of a tar of `dir` (directories, files, symbolic links), paths relative to it. */
function walk(dir: string, prefix = ""): TarSpec[] {
  const out: TarSpec[] = [];
  for (
    const e of [...Deno.readDirSync(`${dir}/${prefix}`)].sort((a, b) => a.name < b.name ? -1 : 1)
  ) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    const st = Deno.lstatSync(`${dir}/${rel}`);
    const mode = (st.mode ?? 0o644) & 0o7777;
    if (st.isSymlink) {
      out.push({ path: rel, type: "symlink", linkpath: Deno.readLinkSync(`${dir}/${rel}`) });
    } else if (st.isDirectory) {
      out.push({ path: `${rel}/`, type: "dir", mode });
      out.push(...walk(dir, rel));
    } else if (st.isFile) {
      out.push({ path: rel, data: Deno.readFileSync(`${dir}/${rel}`), mode });
    }
  }
  return out;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Writes `file`: a docker-archive of `rootfs` tagged `tag`, whose default command is `cmd`. */
export function writeDockerArchive(rootfs: string, tag: string, cmd: string[], file: string): void {
  const layer = makeTar(walk(rootfs));
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: arch,
    os: "linux",
    config: { Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: cmd, WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layer)}`] },
    history: [{ created_by: "mini-docker tests" }],
  }));
  const configName = `${sha256(config)}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: ["layer.tar"] }]);
  Deno.writeFileSync(
    file,
    makeTar([
      { path: "layer.tar", data: layer },
      { path: configName, data: config },
      { path: "manifest.json", data: manifest },
    ]),
  );
}
