/**
 * Finding, listing and removing images in the store, with Docker's rules: a name is looked up
 * as a tag or digest reference first, then as an image id (or a unique prefix of one); `rmi`
 * untags, and deletes an image (and the layers no other image uses) when its last name goes.
 */

import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { digestHex } from "./digest.ts";
import { familiarName, parseReference, repositoryName } from "./reference.ts";
import { type ImageIndex, type ImageRecord, ImageStore } from "./store.ts";

/** An image found by a user-given name. */
export interface FoundImage {
  record: ImageRecord;
  /** How the name matched: a `repo:tag` key, a `repo@digest`, or the id. */
  match: { kind: "tag"; key: string } | { kind: "digest"; key: string } | { kind: "id" };
}

/** Looks `text` up: reference (tag or digest) first, then id or unique id prefix. */
export function findImage(index: ImageIndex, text: string): FoundImage | null {
  let ref;
  try {
    ref = parseReference(text);
  } catch {
    ref = undefined;
  }
  if (ref !== undefined) {
    const repo = repositoryName(ref);
    if (ref.digest !== undefined) {
      const key = `${repo}@${ref.digest}`;
      const record = Object.values(index.images).find((r) => r.repoDigests.includes(key));
      if (record) return { record, match: { kind: "digest", key } };
    } else {
      const key = `${repo}:${ref.tag}`;
      const id = index.tags[key];
      const record = id === undefined ? undefined : index.images[id];
      if (record) return { record, match: { kind: "tag", key } };
    }
  }
  const prefix = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(text)?.[1];
  if (prefix === undefined) return null;
  const ids = Object.keys(index.images).filter((id) => digestHex(id).startsWith(prefix));
  if (ids.length > 1) {
    throw new UserError(`Image id prefix "${text}" is ambiguous: it matches ${ids.length} images`);
  }
  return ids.length === 1 ? { record: index.images[ids[0]!]!, match: { kind: "id" } } : null;
}

/** One line of `images`. */
export interface ImageRow {
  repository: string;
  tag: string;
  id: string;
  created?: string;
  size: number;
  /** The manifest digest it was pulled by from this repository ("sha256:..."), if any. */
  digest?: string;
}

/** Every tag of every image, plus untagged images as `<none>`, newest first. */
export function listImages(store: ImageStore = new ImageStore()): ImageRow[] {
  const index = store.readIndex();
  const rows: ImageRow[] = [];
  for (const record of Object.values(index.images)) {
    const digestIn = (repository: string) =>
      record.repoDigests.find((d) => familiarName(d.slice(0, d.indexOf("@"))) === repository)
        ?.split("@")[1];
    const row = (repository: string, tag: string) => {
      const digest = digestIn(repository);
      rows.push({
        repository,
        tag,
        id: record.id,
        created: record.created,
        size: record.size,
        ...(digest !== undefined && { digest }),
      });
    };
    const tags = Object.entries(index.tags).filter(([, id]) => id === record.id).map(([k]) => k);
    for (const key of tags.sort()) {
      const colon = key.lastIndexOf(":");
      row(familiarName(key.slice(0, colon)), key.slice(colon + 1));
    }
    if (tags.length === 0) {
      const repos = new Set(record.repoDigests.map((d) => d.slice(0, d.indexOf("@"))));
      if (repos.size === 0) row("<none>", "<none>");
      for (const repo of repos) row(familiarName(repo), "<none>");
    }
  }
  const time = (r: ImageRow) => (r.created ? Date.parse(r.created) : 0) || 0;
  return rows.sort((a, b) => time(b) - time(a));
}

/**
 * Who uses an image: the short ids (`<12 hex>`) of the containers made from `imageId`, running
 * or not, whose writable layer sits on the image's layers until they are removed. The image
 * store cannot know this itself (containers are a floor above it), so the caller answers; it is
 * asked under the index lock whenever an image is about to lose all its names.
 */
export type ImageUsers = (imageId: string) => string[];

/**
 * Removes each name: a tag is untagged, and an image whose last name goes is deleted with the
 * layers no other image uses. An image that `usersOf` says a container uses is refused unless
 * `force`; forced, it loses its names but keeps its data until no container uses it (as Docker
 * does). Returns Docker's `Untagged: ...` / `Deleted: ...` lines; errors are collected and
 * thrown at the end, one line each.
 */
export async function removeImages(
  names: string[],
  usersOf: ImageUsers,
  opts: { force?: boolean; store?: ImageStore } = {},
): Promise<string[]> {
  const store = opts.store ?? new ImageStore();
  store.cleanStaleTemp();
  const out: string[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      out.push(...await removeOne(store, name, usersOf, opts.force ?? false));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length > 0) throw new UserError(errors.join("\n"), EXIT_FAILURE);
  return out;
}

async function removeOne(
  store: ImageStore,
  name: string,
  usersOf: ImageUsers,
  force: boolean,
): Promise<string[]> {
  const deleted: ImageRecord[] = [];
  const lines = await store.updateIndex((index) => {
    const found = findImage(index, name);
    if (found === null) throw new UserError(`No such image: ${name}`);
    const { record, match } = found;
    const tags = Object.keys(index.tags).filter((k) => index.tags[k] === record.id);
    const lines: string[] = [];
    const untag = (key: string) => {
      delete index.tags[key];
      lines.push(`Untagged: ${displayKey(key)}`);
    };

    if (match.kind === "tag" && tags.length > 1) {
      untag(match.key); // other tags keep the image
      return lines;
    }
    if (match.kind === "id" && tags.length > 1 && !force) {
      throw new UserError(
        `Cannot remove image "${name}": it is referenced in multiple repositories (use -f to remove all)`,
      );
    }
    const users = usersOf(record.id);
    if (users.length > 0 && !force) {
      throw new UserError(
        `Cannot remove image "${name}": image is being used by container ${users.join(", ")}`,
      );
    }
    for (const key of tags) untag(key);
    for (const d of record.repoDigests) lines.push(`Untagged: ${displayKey(d)}`);
    record.repoDigests = [];
    if (users.length > 0) return lines; // forced while in use: the data stays, nameless

    delete index.images[record.id];
    deleted.push(record);
    const stillUsed = new Set(Object.values(index.images).flatMap((r) => r.layers));
    for (const diffId of record.layers) {
      if (!stillUsed.has(diffId)) store.removeLayer(diffId);
    }
    store.removeUnreferencedBlobs(index, [
      record.id,
      record.manifest,
      ...(record.layerBlobs ?? []),
    ]);
    lines.push(`Deleted: ${record.id}`);
    return lines;
  });
  return lines;
}

function displayKey(key: string): string {
  const at = key.indexOf("@");
  const split = at >= 0 ? at : key.lastIndexOf(":");
  return familiarName(key.slice(0, split)) + key.slice(split);
}

/**
 * `tag SOURCE TARGET`: one more name for an image (a tag that named another image moves). The
 * source is found as `rmi` finds it (name, digest, id); the target must be NAME[:TAG].
 */
export async function tagImage(
  source: string,
  target: string,
  store: ImageStore = new ImageStore(),
): Promise<string> {
  const ref = parseReference(target);
  if (ref.digest !== undefined) {
    throw new UserError(`Cannot tag as "${target}": a tag cannot be a digest (use NAME[:TAG])`);
  }
  const key = `${repositoryName(ref)}:${ref.tag}`;
  return await store.updateIndex((index) => {
    const found = findImage(index, source);
    if (found === null) throw new UserError(`No such image: ${source}`, EXIT_FAILURE);
    index.tags[key] = found.record.id;
    return found.record.id;
  });
}
