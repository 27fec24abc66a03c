"""The output folder of scripts/queue_batch.py (results.csv, one row per finished prompt, and one
folder of downloaded files per done prompt) and what it prints while the batch runs.

A row is appended (and flushed) the moment its prompt finishes, so a crash loses nothing finished.
A prompt's files are downloaded into NNNN.partial/ and renamed to NNNN/ only when all are there, so a
folder without the suffix is always complete. --resume keeps every done row as it is and queues the
others again; without it, a folder that already holds a batch is refused rather than mixed.
"""
import csv
import os
import pathlib
import shutil
import sys


class ResultsError(Exception):
    pass


class BatchResults:
    def __init__(self, out, fields, resume):
        self.out, self.fields = pathlib.Path(out), fields
        self.path = self.out / "results.csv"
        self.out.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not resume:
            raise ResultsError(f"{self.out} already holds a batch (results.csv): go on with it with --resume, "
                               "or choose another --out")
        self.done = {}
        if resume and self.path.exists():
            with open(self.path, newline="") as f:
                self.done = {int(r["index"]): r for r in csv.DictReader(f) if r["status"] == "done"}
        for partial in self.out.glob("*.partial"):
            shutil.rmtree(partial)  # downloads cut short by a crash: their prompts are queued again
        self.rewrite(self.done.values())  # before anything new is appended
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=fields, extrasaction="ignore")

    def check_same_batch(self, index, overrides):
        """A resumed row must be the same prompt settings as this run's job of that index."""
        row = self.done.get(index)
        if row is None:
            return False
        for name, value in overrides.items():
            if value is not None and row.get(name) != str(value):
                raise ResultsError(f"{self.path} row {index} has {name}={row.get(name)!r}, this batch {value!r}: "
                                   "resume with the same workflow and overrides, or choose another --out")
        return True

    def folder(self, index):
        """Where a prompt's files go while they download; ``complete`` renames it."""
        partial = self.out / f"{index:04d}.partial"
        partial.mkdir(exist_ok=True)
        return partial

    def complete(self, index):
        final = self.out / f"{index:04d}"
        if final.exists():
            shutil.rmtree(final)
        (self.out / f"{index:04d}.partial").replace(final)

    def record(self, row):
        self.writer.writerow({k: row.get(k, "") for k in self.fields})
        self.file.flush()
        os.fsync(self.file.fileno())

    def rewrite(self, rows):
        """Replaces results.csv atomically with ``rows`` in prompt order."""
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: int(r["index"])))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def close(self):
        """Rows are appended as prompts finish, which with several in flight is not their order:
        the finished file lists them in prompt order."""
        self.file.close()
        with open(self.path, newline="") as f:
            self.rewrite(list(csv.DictReader(f)))


def node_errors_text(body):
    lines = [body.get("error", {}).get("message", "prompt rejected")]
    for node_id, info in body.get("node_errors", {}).items():
        for error in info.get("errors", []):
            lines.append(f"node {node_id} ({info.get('class_type')}): {error.get('message')}: {error.get('details')}")
    return "; ".join(lines)


class Progress:
    def __init__(self, total):
        self.total, self.done, self.current = total, 0, ""

    def show(self):
        filled = int(30 * self.done / max(self.total, 1))
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.current:<40}")
        sys.stdout.flush()
