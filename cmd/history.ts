/** `history IMAGE`: the image's history entries, newest first, with each layer's size. */

import { Command } from "@commander-js/extra-typings";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { findImage } from "../images/catalog.ts";
import { shortId } from "../images/digest.ts";
import { formatSize } from "../images/progress.ts";
import { ImageStore } from "../images/store.ts";
import { formatList, type ListFormat } from "./format.ts";
import { humanAgo } from "./images.ts";

const HISTORY_FORMAT: ListFormat = {
  table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
  headers: {
    ID: "IMAGE",
    CreatedSince: "CREATED",
    CreatedAt: "CREATED AT",
    CreatedBy: "CREATED BY",
    Size: "SIZE",
    Comment: "COMMENT",
  },
};

interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export function historyCommand(out: (line: string) => void = (line) => console.log(line)) {
  return new Command("history")
    .description("Show the history of an image")
    .argument("<image>", "image name or id")
    .option("--no-trunc", "do not truncate the output")
    .option("-q, --quiet", "only show image ids")
    .option("--format <template>", "table, table TEMPLATE, json, or a Go template")
    .action((name, opts) => {
      const store = new ImageStore();
      const found = findImage(store.readIndex(), name);
      if (found === null) throw new UserError(`No such image: ${name}`, EXIT_FAILURE);
      const { record } = found;
      const bytes = store.readBlob(record.id);
      if (bytes === null) throw new UserError(`Image ${shortId(record.id)} has no config`);
      const config = JSON.parse(new TextDecoder().decode(bytes));
      const history: HistoryEntry[] = Array.isArray(config.history) ? config.history : [];
      const trunc = opts.trunc !== false;
      let layer = 0;
      const rows = history.map((h) => {
        let size = 0;
        if (!h.empty_layer) {
          const diffId = record.layers[layer++];
          if (diffId !== undefined && store.hasLayer(diffId)) size = store.layerInfo(diffId).size;
        }
        let by = h.created_by ?? "";
        if (trunc && by.length > 45) by = `${by.slice(0, 44)}…`;
        return {
          ID: "<missing>",
          CreatedAt: h.created ?? "",
          CreatedSince: h.created ? humanAgo(Date.parse(h.created), Date.now()) : "N/A",
          CreatedBy: by,
          Size: formatSize(size),
          Comment: h.comment ?? "",
        };
      }).reverse();
      if (rows.length > 0) rows[0]!.ID = trunc ? shortId(record.id) : record.id;
      if (opts.quiet) {
        for (const r of rows) out(r.ID);
        return;
      }
      for (const line of formatList(rows, opts.format, HISTORY_FORMAT)) out(line);
    });
}
