import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

extension Frontend {
  /// `runbook destroy [STEP...]`: lists what will be deleted and what stays, asks for the
  /// deployment name, then runs the steps' teardowns in reverse guide order (and, when every step
  /// goes, a scan for anything still tagged with the deployment).
  func destroy(_ context: Context, parsed: ParsedCommandLine, style: Style, argv: [String])
    async throws -> Int32
  {
    let named = try parsed.arguments.isEmpty ? Catalogue.steps : selectSteps(parsed.arguments)
    let deployment = context.deployment
    // Steps without a teardown (verify, update) made nothing to delete; their records go too.
    let steps = named
    let yes = parsed.flag("yes")
    let force = parsed.flag("force")
    if yes && !force {
      throw UsageError("'destroy --yes' deletes without asking only together with --force")
    }
    if !yes && !environment.inputIsTerminal {
      throw UsageError("'destroy' needs the deployment name typed in a terminal, or --yes --force")
    }
    let jobs = try self.jobs(parsed)
    let request = RunRequest(
      skipFinalSnapshot: parsed.flag("skip-final-snapshot"),
      deleteSecretsWithoutRecovery: parsed.flag("force-delete-without-recovery"))
    let preview = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil,
      options: RunOptions(), request: request)
    guard let checkpoint = try await preview.loadCheckpoint() else {
      environment.output.write(
        "nothing to destroy: there is no checkpoint in \(preview.state.location)\n")
      return ExitStatus.success
    }
    func known(_ step: any GuideStep) -> Bool {
      checkpoint.actions.keys.contains { $0.hasPrefix(step.id + "/") }
    }

    // A step whose exports a remaining step still uses goes only together with it.
    let leaving = Set(steps.map(\.id))
    for step in Catalogue.steps
    where !leaving.contains(step.id) && known(step) && !step.teardown(for: deployment).isEmpty {
      let needs = Set(step.requiredExports(for: deployment))
      for gone in steps where !needs.isDisjoint(with: gone.producedExports(for: deployment)) {
        throw UsageError(
          "step '\(step.id)' uses what '\(gone.id)' created: destroy '\(step.id)' first, or both together"
        )
      }
    }

    let teardown: [any GuideStep] = steps.reversed().filter(known).map { TeardownStep<Deployment>($0) }
    let planned = try preview.plan(teardown, checkpoint: checkpoint)
    var deletes = 0
    for step in planned {
      environment.output.write(style.bold("\(step.section) \(step.title) (\(step.id))") + "\n")
      for action in step.actions {
        if let kept = action.kept {
          environment.output.write(
            style.dim("  = \(action.name): \(action.summary) (kept: \(kept))") + "\n")
        } else {
          deletes += action.kind == "write" ? 1 : 0
          let marker = action.kind == "write" ? "-" : "$"
          environment.output.write("  \(marker) \(action.name): \(action.summary)\n")
        }
      }
    }
    if planned.isEmpty {
      environment.output.write(
        "the checkpoint records nothing of \(named.map(\.id).joined(separator: ", ")) to delete\n")
    } else {
      environment.output.write("\(deletes) deletes ('-' deletes, '$' reads and waits, '=' kept)\n")
    }
    let scan = parsed.arguments.isEmpty ? [Catalogue.leftoverScan] : []

    if !yes && !planned.isEmpty {
      environment.output.write(
        style.red("This deletes the resources listed above.")
          + " Type the deployment name (\(deployment.name)) to go on: ")
      guard environment.readLine()?.trimmingCharacters(in: .whitespaces) == deployment.name else {
        throw Interrupted("the deployment name was not typed; nothing was deleted")
      }
      if request.deleteSecretsWithoutRecovery, planned.contains(where: { $0.id == "secrets" }) {
        environment.output.write(
          style.red("Secrets will be deleted at once, with no recovery window.")
            + " Type the deployment name again to confirm: ")
        guard environment.readLine()?.trimmingCharacters(in: .whitespaces) == deployment.name else {
          throw Interrupted("the second confirmation was not given; nothing was deleted")
        }
      }
    }

    let reporter = ConsoleReporter(
      output: environment.output, errors: environment.errors, style: style,
      verbose: parsed.flag("verbose"))
    let options = RunOptions(
      assumeYes: true, jobs: jobs,
      commandLine: commandLine(argv))
    let engine = context.engine(
      runner: runner, reporter: reporter, prompter: nil, options: options, request: request)
    currentEngine.withLock { $0 = engine }
    defer { currentEngine.withLock { $0 = nil } }
    defer { reporter.finish() }  // held blocks and the live line, also after a failure
    let started = Date()
    let summary = try await engine.run(teardown + scan)
    var counts: [ActionOutcome: Int] = [:]
    for outcome in summary.outcomes.values { counts[outcome, default: 0] += 1 }
    let parts = counts.sorted { $0.key.rawValue < $1.key.rawValue }.map {
      "\($0.value) \($0.key.rawValue)"
    }
    environment.output.write(
      style.bold(
        "destroy finished in \(String(format: "%.1f", Date().timeIntervalSince(started)))s: ")
        + parts.joined(separator: ", ") + "\n")
    return ExitStatus.success
  }
}
