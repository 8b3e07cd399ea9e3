import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

extension Engine {
  // MARK: - Run

  /// Runs the steps in order. Throws ``StepFailure``, ``Interrupted``, ``UsageError``,
  /// ``CheckpointError`` or ``LockHeldError``.
  package func run(_ steps: [any Step<Configuration>]) async throws -> RunSummary {
    // Before anything else: the files a killed run could not remove (secrets among them).
    let abandoned = PrivateFolder.removeAbandoned(in: state.scratchDirectory)
    if !abandoned.isEmpty {
      reporter.report(
        .note(
          "removed \(abandoned.count) private folder(s) a run that was killed left in \(state.scratchDirectory)"
        ))
    }
    // Everything that can be checked without writing is checked first, so bad input creates and
    // changes nothing in the state directory; what needs no request comes first.
    try state.checkWritable()
    if let holder = try await state.lockHolder() {
      throw LockHeldError(path: state.lockFile, holder: holder)
    }
    let loaded = try await loadCheckpoint()
    try await state.journal.verify(
      lineage: loaded?.lineage, actions: actionsToRun(steps, checkpoint: loaded))
    try checkRequests(steps)
    // A teardown of a step the checkpoint knows nothing of has nothing to do.
    let steps = steps.filter { step in
      !(step is TeardownStep<Configuration>)
        || loaded?.actions.keys.contains { $0.hasPrefix(step.id + "/") } == true
    }
    // `--refresh`: read what the checkpoint records, before anything is written; a resource
    // that cannot be changed in place stops the run here.
    let refresh = try await refreshBeforeRun(steps, checkpoint: loaded)
    let preliminary = refreshed(loaded, refresh)
    try checkPrerequisites(steps, checkpoint: preliminary)
    let drift = configurationDrift(steps, checkpoint: loaded).filter {
      refresh?.keys.contains("\($0.step)/\($0.action)") != true
    }
    guard hasWork(steps, checkpoint: preliminary) else {
      var summary = RunSummary()
      summary.nothingToDo = true
      summary.pendingManual = pendingManual(steps, preliminary)
      summary.configurationDrift = drift
      summary.refresh = refresh
      return summary
    }
    try checkTools(steps, checkpoint: preliminary)
    try gatherSecrets(steps, checkpoint: preliminary, environment: environment)
    let account = try await callerAccount()
    try await checkServices(steps, checkpoint: preliminary)
    if let pinned = preliminary?.account, pinned != account {
      throw CheckpointError.foreignAccount(
        file: state.stateFile, checkpoint: pinned, credentials: account)
    }

    try await state.prepare()
    let lock = try await state.acquireLock(command: options.commandLine)
    do {
      var summary = try await runLocked(steps, lock: lock, account: account, refresh: refresh)
      await lock.release()
      summary.configurationDrift = drift
      summary.refresh = refresh
      return summary
    } catch {
      await lock.release()
      throw error
    }
  }

  /// The part of ``run(_:)`` that runs under the lock.
  private func runLocked(
    _ steps: [any Step<Configuration>], lock: any HeldLock, account: String,
    refresh: RefreshPlan?
  ) async throws -> RunSummary {
    if let previous = lock.previous {
      reporter.report(
        .warning(
          "took over the lock left by pid \(previous.pid) on \(previous.host) (started \(previous.startedAt)), which is no longer running"
        ))
    }
    // Read again under the lock: another run may have finished in between.
    let existing = try await loadCheckpoint()
    let audit = AuditLog(directory: state.logsDirectory)
    audit.write("run: \(options.commandLine)")
    audit.write("account \(account), region \(region)")
    let checkpoint =
      existing ?? Checkpoint(deployment: deployment.name, region: region)
    if let pinned = checkpoint.account, pinned != account {
      throw CheckpointError.foreignAccount(
        file: state.stateFile, checkpoint: pinned, credentials: account)
    }
    // Before the first change, so a run killed at any point after it is in the history.
    let started = startedRecord(steps, checkpoint: checkpoint, audit: audit)
    await appendHistory(started)
    let keeper = CheckpointKeeper(checkpoint, directory: state)
    // What the run changed is counted from the checkpoint after a refresh's resets: an action
    // made anew shows as created, one reset and not made again (skipped, a kill) not as deleted.
    var base = checkpoint
    do {
      if let refresh {
        try await applyResets(refresh, keeper: keeper, audit: audit)
        base = await keeper.current
      }
      let summary = try await work(steps, keeper: keeper, audit: audit, account: account)
      var finished = started.finished(
        outcome: .succeeded,
        changes: Self.changes(from: base, to: await keeper.current), failure: nil)
      finished.criticalPath = historyCriticalPath
      await appendHistory(finished)
      return summary
    } catch {
      var finished = started.finished(
        outcome: Self.historyOutcome(of: error),
        changes: Self.changes(from: base, to: await keeper.current),
        failure: "\(error)".split(separator: "\n").first.map(String.init))
      finished.criticalPath = historyCriticalPath
      await appendHistory(finished)
      throw error
    }
  }

  /// The part of ``runLocked(_:lock:account:)`` between the history's two records.
  private func work(
    _ steps: [any Step<Configuration>], keeper: CheckpointKeeper, audit: AuditLog,
    account: String
  ) async throws -> RunSummary {
    if await keeper.current.account == nil { try await keeper.pin(account: account) }
    // Both in the state directory, never in $TMPDIR: what a killed run leaves there (a
    // function's package, secret files) the next run removes (``PrivateFolder/removeAbandoned(in:)``).
    let folder: PrivateFolder
    let scratch: PrivateFolder
    do {
      folder = try PrivateFolder(in: state.scratchDirectory)
      scratch = try PrivateFolder(in: state.scratchDirectory)
    } catch {
      throw CheckpointError.unwritable(path: error.path, reason: error.reason)
    }
    privateFolder.withLock { $0 = folder.path }
    runDirectory.withLock { $0 = scratch.path }
    defer {
      runDirectory.withLock { $0 = nil }
      scratch.remove()
      privateFolder.withLock { $0 = nil }
      folder.remove()
    }
    let journal = state.journal
    var summary = RunSummary()
    halted.withLock { $0 = false }
    createdThisRun.withLock { $0 = [] }
    timings.reset()
    let planned = steps.map { (id: $0.id, actions: $0.actions(for: deployment)) }
    var producing: [String: String] = [:]
    for step in planned {
      for action in step.actions {
        if let export = action.capture?.export { producing[export] = "\(step.id)/\(action.name)" }
      }
    }
    producers.withLock { $0 = producing }
    let urgency = prompter == nil ? WaitPriority.of(planned) : [:]
    priorities.withLock { $0 = urgency }
    let fresh = Self.freshExports(
      in: await keeper.current, within: options.retry.notVisibleYetSeconds)
    freshExports.withLock { $0 = fresh }
    let slots = ActionSlots(prompter == nil ? options.jobs : 1)
    let concurrent =
      prompter == nil && options.jobs > 1 && !steps.contains { $0 is TeardownStep<Configuration> }
    if concurrent {
      summary.outcomes = try await runConcurrently(
        steps, keeper: keeper, journal: journal, audit: audit, slots: slots)
    } else {
      for step in steps {
        try checkInterrupted()
        let execution = StepRun(
          engine: self, step: step, keeper: keeper, journal: journal, audit: audit, slots: slots)
        let outcomes = try await execution.run()
        for (name, outcome) in outcomes { summary.outcomes["\(step.id)/\(name)"] = outcome }
        if step is TeardownStep<Configuration>, !outcomes.values.contains(.skipped) {
          // Everything the step made is gone: a later run starts the step afresh.
          try await journal.append(
            JournalEntry(lineage: await keeper.current.lineage, event: .reset, action: step.id))
          try await keeper.forget(step: step.id)
          reporter.report(.note("  forgot step '\(step.id)': what it created is deleted"))
        }
      }
    }
    summary.pendingManual = pendingManual(steps, await keeper.current)
    summary.criticalPath = timings.criticalPath
    if let path = summary.criticalPath {
      audit.write("critical path: \(path.description)")
    }
    return summary
  }

  /// The exports of resources the checkpoint records as created (or recovered) less than
  /// `seconds` ago.
  static func freshExports(in checkpoint: Checkpoint, within seconds: Double, now: Date = Date())
    -> Set<String>
  {
    Set(
      checkpoint.actions.values.compactMap { record in
        guard record.outcome == .created || record.outcome == .recovered,
          let export = record.export, let finished = parseTimestamp(record.finishedAt),
          now.timeIntervalSince(finished) < seconds
        else { return nil }
        return export
      })
  }

  /// For each step of a run (by index), the earlier steps of the run it waits for before it starts:
  /// an operation (verify, update) waits for every earlier step. Any other step starts at once,
  /// and each of its actions waits for the exports it uses and the steps it names
  /// (``Action/afterSteps``) at the run's ``ExportGate``.
  func stepDependencies(_ steps: [any Step<Configuration>]) -> [Set<Int>] {
    steps.indices.map { index in steps[index].runsByDefault ? [] : Set(0..<index) }
  }

  /// What the steps of a run are still to make, each with its step's index: the exports (what the
  /// checkpoint has done already is there now) and the steps themselves (``ExportGate/step(_:)``).
  func exportGate(_ steps: [any Step<Configuration>], checkpoint: Checkpoint) -> ExportGate {
    var pending: [String: Int] = [:]
    for (index, step) in steps.enumerated() {
      pending[ExportGate.step(step.id)] = index
      let actions = step.actions(for: deployment)
      let done = StepExecution.done(
        actions, StepExecution.dependencies(of: actions), checkpoint, step.id)
      for action in actions {
        guard let export = action.capture?.export,
          !done.contains(action.name) || overwrites(action)
        else { continue }
        pending[export] = index
      }
    }
    return ExportGate(pending: pending)
  }

  /// Runs the steps side by side, each action as soon as the exports it uses exist, whichever
  /// step makes them (the DB subnet group once the private subnets are made, while the NAT gateway
  /// is still pending), and each step once the steps it waits for have finished
  /// (``stepDependencies(_:)``); `slots` bounds the actions running at once across them (`--jobs`). After a failure no new
  /// step starts and the running ones start no new action; the first real failure is thrown.
  private func runConcurrently(
    _ steps: [any Step<Configuration>], keeper: CheckpointKeeper, journal: any JournalStore,
    audit: AuditLog,
    slots: ActionSlots
  ) async throws -> [String: ActionOutcome] {
    let needs = stepDependencies(steps)
    let gate = exportGate(steps, checkpoint: await keeper.current)
    var outcomes: [String: ActionOutcome] = [:]
    var started = Set<Int>()
    var finished = Set<Int>()
    var firstError: Error?
    await withTaskGroup(of: StepCompletion.self) { group in
      var running = 0
      while true {
        if firstError == nil {
          do { try checkInterrupted() } catch { firstError = error }
        }
        if firstError == nil {
          for index in steps.indices
          where !started.contains(index) && needs[index].isSubset(of: finished) {
            started.insert(index)
            running += 1
            let step = steps[index]
            group.addTask {
              let execution = StepRun(
                engine: self, step: step, keeper: keeper, journal: journal, audit: audit,
                slots: slots,
                gate: GatePlace(
                  exports: gate, index: index, stepsBefore: needs[index].map { steps[$0].id }))
              do {
                return StepCompletion(index: index, result: .success(try await execution.run()))
              } catch {
                return StepCompletion(index: index, result: .failure(error))
              }
            }
          }
        }
        guard running > 0, let completion = await group.next() else { break }
        running -= 1
        defer { gate.stepEnded(completion.index) }
        switch completion.result {
        case .success(let stepOutcomes):
          finished.insert(completion.index)
          for (name, outcome) in stepOutcomes {
            outcomes["\(steps[completion.index].id)/\(name)"] = outcome
          }
        case .failure(let error):
          halted.withLock { $0 = true }
          // A real failure explains more than the halt or interruption it caused elsewhere.
          if firstError == nil || firstError is HaltedBesideAFailure
            || (firstError is Interrupted
              && !(error is Interrupted || error is HaltedBesideAFailure))
          {
            firstError = error
          }
        }
      }
    }
    if let firstError { throw firstError }
    return outcomes
  }

  /// Whether this run puts new values into `action`'s resource even when it is done (`--overwrite-secrets`).
  func overwrites(_ action: Action) -> Bool { options.overwriteSecrets && action.overwrite != nil }

  func pendingManual(_ steps: [any Step<Configuration>], _ checkpoint: Checkpoint?) -> [String] {
    steps.flatMap { step in
      step.actions(for: deployment).compactMap { action in
        checkpoint?.record(step.id, action.name)?.status == .pendingManual
          ? "\(step.id)/\(action.name)" : nil
      }
    }
  }
}
