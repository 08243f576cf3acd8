/**
 * `push`: an image's layer blobs and config, exactly as stored (so the digests its manifest
 * names hold), then its manifest by tag. A blob the repository already has is skipped (HEAD);
 * one that another repository of the same registry has (the image was pulled or pushed from
 * there) is mounted from it; the others are sent from the store in chunks, each streamed. The
 * manifest goes last, so a failed push leaves no tag pointing at missing blobs; an upload that
 * fails is cancelled.
 */

import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { parseManifest } from "./config.ts";
import { shortId } from "./digest.ts";
import { createProgress, type Progress } from "./progress.ts";
import { formatReference, parseReference, repositoryName } from "./reference.ts";
import { RegistryClient } from "./registry.ts";
import { ImageStore } from "./store.ts";

/** How to push. */
export interface PushOptions {
  insecure?: boolean;
  progress?: Progress;
  /** Interrupts the push (Ctrl-C): the upload under way is cancelled, no manifest is sent. */
  signal?: AbortSignal;
  store?: ImageStore;
}

/** What a push did. */
export interface PushResult {
  tag: string;
  digest: string;
  size: number;
}

/** Pushes the image named `NAME[:TAG]` to the registry the name points at. */
export async function pushImage(name: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(name);
  if (ref.digest !== undefined) {
    throw new UserError(`Cannot push "${name}": push a tag (NAME[:TAG]), not a digest`);
  }
  const label = formatReference(ref);
  const store = opts.store ?? new ImageStore();
  const index = store.readIndex();
  const key = `${repositoryName(ref)}:${ref.tag}`;
  const id = index.tags[key];
  const record = id === undefined ? undefined : index.images[id];
  if (record === undefined) {
    throw new UserError(
      `An image does not exist locally with the tag: ${name} (tag it first: mini-docker tag IMAGE ${name})`,
      EXIT_FAILURE,
    );
  }
  const fail = (detail: string, code = EXIT_FAILURE) =>
    new UserError(`Cannot push "${label}": ${detail}`, code);
  const manifestBytes = record.manifest === undefined ? null : store.readBlob(record.manifest);
  const blobs = record.layerBlobs ?? [];
  if (
    manifestBytes === null || record.layerBlobs === undefined ||
    !blobs.every((b) => store.hasBlob(b))
  ) {
    throw fail(
      "it was stored before mini-docker kept layer blobs: pull it again (or re-import it)",
    );
  }
  const manifest = parseManifest(manifestBytes);
  const mediaType: string = JSON.parse(new TextDecoder().decode(manifestBytes)).mediaType ??
    "application/vnd.oci.image.manifest.v1+json";

  // Repositories of the same registry that have the image's blobs: mount sources.
  const sources = new Set<string>();
  const prefix = `${ref.domain}/`;
  for (const d of record.repoDigests) {
    const repo = d.slice(0, d.indexOf("@"));
    if (repo.startsWith(prefix)) sources.add(repo.slice(prefix.length));
  }
  for (const [tagKey, tagged] of Object.entries(index.tags)) {
    const repo = tagKey.slice(0, tagKey.lastIndexOf(":"));
    if (tagged === record.id && repo.startsWith(prefix)) sources.add(repo.slice(prefix.length));
  }
  sources.delete(ref.path);
  const client = new RegistryClient(ref.domain, ref.path, {
    insecure: opts.insecure,
    signal: opts.signal,
    scopes: [
      `repository:${ref.path}:pull,push`,
      ...[...sources].map((r) => `repository:${r}:pull`),
    ],
  });

  const progress = opts.progress ?? createProgress();
  try {
    progress.status(`The push refers to repository [${repositoryName(ref)}]`);
    await client.ping();
    const layers = manifest.layers;
    for (const l of [...layers].reverse()) progress.layer(shortId(l.digest), "Preparing");
    for (const l of [...layers].reverse()) {
      const line = await pushBlob(client, store, l.digest, l.size, [...sources], progress);
      progress.layer(shortId(l.digest), line);
    }
    await pushBlob(client, store, manifest.config.digest, manifest.config.size, [...sources]);
    const digest = await client.putManifest(ref.tag!, manifestBytes, mediaType);
    await store.updateIndex((idx) => {
      const rec = idx.images[record.id];
      const repoDigest = `${repositoryName(ref)}@${digest}`;
      if (rec !== undefined && !rec.repoDigests.includes(repoDigest)) {
        rec.repoDigests.push(repoDigest);
      }
    });
    return { tag: ref.tag!, digest, size: manifestBytes.byteLength };
  } catch (err) {
    if (opts.signal?.aborted) throw fail("interrupted (the upload under way was cancelled)", 130);
    if (err instanceof UserError) throw new UserError(err.message, EXIT_FAILURE);
    throw fail(err instanceof Error ? err.message : String(err));
  } finally {
    progress.close();
  }
}

/** One blob: skipped, mounted or uploaded; the progress line that says which. */
async function pushBlob(
  client: RegistryClient,
  store: ImageStore,
  digest: string,
  size: number,
  sources: string[],
  progress?: Progress,
): Promise<string> {
  if (await client.hasBlob(digest)) return "Layer already exists";
  let session: string | undefined;
  for (const from of sources) {
    const mounted = await client.mountBlob(digest, from);
    if (mounted === true) return `Mounted from ${from}`;
    // Not there: the registry opened an upload session instead; use it.
    session = mounted;
    break;
  }
  session ??= await client.startUpload();
  const file = await Deno.open(store.blobPath(digest));
  try {
    const id = shortId(digest);
    let sent = 0;
    const chunk = (offset: number, length: number) =>
      fileRange(file, offset, length, (n) => {
        sent += n;
        progress?.bytes(id, sent, size, "Pushing");
      });
    await client.upload(session, chunk, size, digest);
  } finally {
    file.close();
  }
  return "Pushed";
}

/** `length` bytes of `file` from `offset`, read 64 KiB at a time as they are asked for. */
function fileRange(
  file: Deno.FsFile,
  offset: number,
  length: number,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  let left = length;
  let positioned = false;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (!positioned) {
        await file.seek(offset, Deno.SeekMode.Start);
        positioned = true;
      }
      if (left === 0) return ctl.close();
      const buf = new Uint8Array(Math.min(left, 64 << 10));
      const n = await file.read(buf);
      if (n === null || n === 0) {
        return ctl.error(new Error(`blob file ended ${left} bytes short`));
      }
      left -= n;
      onBytes(n);
      ctl.enqueue(buf.subarray(0, n));
    },
  });
}
