import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

extension Frontend {
  /// `runbook unlock`: shows who holds the S3 lock and deletes it after the operator types the
  /// deployment name (or with `--yes --force`). It deletes only the version it showed: a lock taken
  /// by another run in between stays.
  func unlock(_ context: Context, parsed: ParsedCommandLine, style: Style) async throws -> Int32 {
    let state = context.stateStore(runner: runner)
    guard let store = state as? S3StateStore else {
      // A local lock is an flock: it ends with its process, and a dead holder's record is taken over.
      if let holder = try await state.lockHolder() {
        throw LockHeldError(path: state.lockFile, holder: holder)
      }
      environment.output.write(
        "\(state.lockFile): not locked (a local lock ends with the run that holds it)\n")
      return ExitStatus.success
    }
    guard let holder = try await store.lockHolder() else {
      environment.output.write("\(store.lockFile): not locked\n")
      return ExitStatus.success
    }
    // Before the operator is asked: an aws CLI without `delete-object --if-match` cannot unlock.
    try await store.checkCLI()
    let lease =
      holder.expired()
      ? "its lease expired at \(holder.expiresAt ?? "?")"
      : style.red("its lease runs until \(holder.expiresAt ?? "?"): that run may still be working")
    environment.output.write(
      "\(store.lockFile) is held by pid \(holder.pid) on \(holder.host)"
        + (holder.user.map { " as \($0)" } ?? "")
        + ", '\(holder.command)', since \(holder.startedAt); \(lease)\n")
    if parsed.flag("yes") != parsed.flag("force") {
      throw UsageError("'unlock' goes on without asking only with both --yes and --force")
    }
    if !parsed.flag("force") {
      guard environment.inputIsTerminal else {
        throw UsageError("'unlock' needs the deployment name typed in a terminal, or --yes --force")
      }
      environment.output.write(
        "Unlock only when that run is gone: two runs at once can create resources twice."
          + " Type the deployment name (\(context.deployment.name)) to unlock: ")
      guard environment.readLine()?.trimmingCharacters(in: .whitespaces) == context.deployment.name
      else {
        throw Interrupted("the deployment name was not typed; the lock was left as it is")
      }
    }
    guard try await store.removeLock() else {
      throw StateConflictError(
        object: store.lockFile,
        detail:
          "PreconditionFailed: the lock changed since it was read (another run took it); it was left as it is"
      )
    }
    environment.output.write(
      "unlocked \(store.location) (held by pid \(holder.pid) on \(holder.host))\n")
    return ExitStatus.success
  }

  /// `runbook state push` (local folder to S3) and `runbook state pull` (S3 to local folder):
  /// copies `state.json`, the journal entries that count and the run history records the
  /// destination lacks, under both locks, refusing a
  /// destination that holds another lineage or a newer serial.
  func transferState(_ context: Context, parsed: ParsedCommandLine) async throws -> Int32 {
    guard parsed.arguments.count == 1, let direction = parsed.arguments.first,
      ["push", "pull"].contains(direction)
    else { throw UsageError("'state' takes 'push' or 'pull'") }
    guard let remote = context.stateStore(runner: runner) as? S3StateStore else {
      throw UsageError(
        "'state \(direction)' needs S3 state: --state s3://BUCKET/PREFIX (or 'state' in the configuration)"
      )
    }
    let local = context.localState
    let (source, destination): (any StateStore, any StateStore) =
      direction == "push" ? (local, remote) : (remote, local)
    try local.prepare()
    try await remote.prepare()
    let command = "runbook state \(direction)"
    let localLock = try local.acquireLock(command: command)
    let remoteLock: any HeldLock
    do { remoteLock = try await remote.acquireLock(command: command) } catch {
      await localLock.release()
      throw error
    }
    do {
      let copied = try await copy(from: source, to: destination, context: context)
      // The run history goes with it (after the checkpoint: a failure here leaves the copy whole).
      let runs = try await destination.history.merge(from: source.history)
      await remoteLock.release()
      await localLock.release()
      environment.output.write(
        "copied \(source.stateFile) (serial \(copied.serial), lineage \(copied.lineage)) to \(destination.stateFile), and \(runs) run history record(s)\n"
      )
      return ExitStatus.success
    } catch {
      await remoteLock.release()
      await localLock.release()
      throw error
    }
  }

  private func copy(from source: any StateStore, to destination: any StateStore, context: Context)
    async throws
    -> Checkpoint
  {
    guard let checkpoint = try await source.load() else {
      throw UsageError("\(source.stateFile): there is no checkpoint to copy")
    }
    if checkpoint.deployment != context.deployment.name {
      throw CheckpointError.foreignDeployment(
        file: source.stateFile, checkpoint: checkpoint.deployment,
        configuration: context.deployment.name)
    }
    let existing = try await destination.load()
    if let existing {
      guard existing.lineage == checkpoint.lineage else {
        throw UsageError(
          "\(destination.stateFile) holds another lineage (\(existing.lineage), deployment \(existing.deployment)) than \(source.stateFile) (\(checkpoint.lineage)): nothing was copied; use another location, or remove it if it is stale"
        )
      }
      guard existing.serial <= checkpoint.serial else {
        throw UsageError(
          "\(destination.stateFile) is newer (serial \(existing.serial)) than \(source.stateFile) (serial \(checkpoint.serial)): nothing was copied"
        )
      }
    }
    // The entries that count for each action, so an interrupted write is reconciled the same way.
    let entries: [JournalEntry]
    if let journal = source.journal as? S3Journal {
      entries = try await journal.latestEntries(lineage: checkpoint.lineage)
    } else {
      entries = try Journal(path: (source as! StateDirectory).journalFile).latest(
        lineage: checkpoint.lineage
      )
      .values.sorted { $0.at < $1.at }
    }
    if existing != nil {
      // What the destination journaled before no longer counts.
      for step in Catalogue.steps {
        try await destination.journal.append(
          JournalEntry(lineage: checkpoint.lineage, event: .reset, action: step.id))
      }
    }
    for entry in entries { try await destination.journal.append(entry) }
    try await destination.save(checkpoint)
    return checkpoint
  }
}
