import Foundation
import RunbookProcess
import RunbookState
import Synchronization

/// Runs the actions of one step of a run: independent ones at once (bounded by `--jobs`), each through
/// write-ahead journal, command, capture and checkpoint.
final class StepRun<Configuration: RunConfiguration>: Sendable {
  let engine: Engine<Configuration>
  let step: any Step<Configuration>
  let keeper: CheckpointKeeper
  let journal: any JournalStore
  let audit: AuditLog
  /// Set when the operator answers [a]ll: later writes of the step run without asking.
  let approveAll = Mutex(false)
  /// What the reads of this run answered. Each aws call costs about a second: a read of a command
  /// already answered in this run (the last poll of a wait asks for the values read after it)
  /// takes the answer from here.
  let answeredThisRun = Mutex(AnsweredReads())

  /// Bounds the actions running at once across the run's steps; nil: only this step's `--jobs`.
  let slots: ActionSlots?
  /// When steps run side by side: where an action waits for the exports other steps make, and
  /// this step's index in the run. Nil: the steps run one after the other.
  let gate: GatePlace?

  init(
    engine: Engine<Configuration>, step: any Step<Configuration>, keeper: CheckpointKeeper,
    journal: any JournalStore,
    audit: AuditLog, slots: ActionSlots? = nil, gate: GatePlace? = nil
  ) {
    self.slots = slots
    self.gate = gate
    self.engine = engine
    self.step = step
    self.keeper = keeper
    self.journal = journal
    self.audit = audit
  }

  var reporter: any Reporter { engine.reporter }

  func run() async throws -> [String: ActionOutcome] {
    let started = Date()
    reporter.report(.stepStarted(step: step.id, section: step.section, title: step.title))
    let actions = step.actions(for: engine.deployment)
    let dependencies = StepExecution.dependencies(of: actions)
    let checkpoint = await keeper.current
    var outcomes: [String: ActionOutcome] = [:]
    var finished = Set<String>()
    var skipped = Set<String>()
    let done = StepExecution.done(actions, dependencies, checkpoint, step.id)
    for action in actions where done.contains(action.name) && !engine.overwrites(action) {
      finished.insert(action.name)
      outcomes[action.name] = .alreadyDone
      reporter.report(
        .actionFinished(
          step: step.id, action: action.name, outcome: .alreadyDone,
          detail: StepExecution.detail(action, checkpoint.record(step.id, action.name)?.value)))
    }
    var pending = actions.filter { !finished.contains($0.name) }
    let jobs = engine.prompter == nil ? engine.options.jobs : 1
    var firstError: Error?

    await withTaskGroup(of: Completion.self) { group in
      var running = 0
      while true {
        if firstError == nil, !engine.isHalted {
          var index = 0
          // Beside other steps, an action may first wait for another step's export: the run's
          // slots alone bound what runs at once, so a waiting action holds up none of its step.
          while index < pending.count, gate != nil || running < jobs {
            let action = pending[index]
            let needs = dependencies[action.name] ?? []
            if !needs.isDisjoint(with: skipped) {
              skipped.insert(action.name)
              outcomes[action.name] = .skipped
              reporter.report(
                .actionFinished(
                  step: step.id, action: action.name, outcome: .skipped,
                  detail: "an action it needs was skipped"))
              pending.remove(at: index)
              // Actions listed earlier may need this one: look at them again.
              index = 0
              continue
            }
            if needs.isSubset(of: finished) {
              pending.remove(at: index)
              running += 1
              group.addTask {
                do {
                  try await self.awaitOtherSteps(action)
                } catch {
                  return Completion(name: action.name, result: .failure(error))
                }
                await self.slots?.acquire(
                  priority: self.engine.priorities.withLock {
                    $0["\(self.step.id)/\(action.name)"] ?? 0
                  })
                let completion: Completion
                let started = Date()
                do {
                  let outcome = try await self.execute(action)
                  self.engine.timings.record(
                    ActionTiming(
                      key: "\(self.step.id)/\(action.name)", started: started, finished: Date(),
                      needs: self.needs(of: action, within: dependencies),
                      afterEverythingBefore: self.gate == nil))
                  if let export = action.capture?.export { self.gate?.exports.produced(export) }
                  completion = Completion(name: action.name, result: .success(outcome))
                } catch {
                  completion = Completion(name: action.name, result: .failure(error))
                }
                await self.slots?.release()
                return completion
              }
              continue
            }
            index += 1
          }
        }
        guard running > 0, let completion = await group.next() else { break }
        let name = completion.name
        running -= 1
        switch completion.result {
        case .success(let outcome):
          outcomes[name] = outcome
          if outcome == .skipped { skipped.insert(name) } else { finished.insert(name) }
        case .failure(let error):
          // A real failure explains more than the interruption it may have caused.
          if firstError == nil || (firstError is Interrupted && !(error is Interrupted)) {
            firstError = error
          }
        }
      }
    }
    if let firstError { throw firstError }
    if !pending.isEmpty, engine.isHalted {
      throw HaltedBesideAFailure(step: step.id)
    }
    if let stuck = pending.first {
      // Only a malformed step gets here: `after` names an action the step does not have, or
      // actions wait for each other. Never report such a step as finished.
      let waiting = (dependencies[stuck.name] ?? []).subtracting(finished).sorted()
      throw StepFailure(
        step: step.id, action: stuck.name, command: stuck.command.description, termination: nil,
        errorCode: nil,
        reason:
          "it waits for \(waiting.joined(separator: ", ")), which can never finish: the step names an action it does not have, or its actions wait for each other"
      )
    }
    reporter.report(.stepFinished(step: step.id, elapsedSeconds: Date().timeIntervalSince(started)))
    return outcomes
  }

  /// What `action` waited for, for the critical path: the actions of the step it needs, the
  /// actions of the run that make the exports it uses, and whole steps (`step/`).
  private func needs(of action: Action, within dependencies: [String: Set<String>]) -> Set<String> {
    let producers = engine.producers.withLock { $0 }
    var needs = Set((dependencies[action.name] ?? []).map { "\(step.id)/\($0)" })
    needs.formUnion(action.exportReferences.compactMap { producers[$0] })
    needs.formUnion(action.afterSteps.map { $0 + "/" })
    needs.formUnion((gate?.stepsBefore ?? []).map { $0 + "/" })
    return needs
  }

  /// Waits until the other steps of the run have made the exports `action` uses. Throws
  /// ``HaltedBesideAFailure`` when a step failed meanwhile: the action must not start then.
  private func awaitOtherSteps(_ action: Action) async throws {
    guard let gate else { return }
    let awaited = gate.exports.awaited(action, by: gate.index)
    guard !awaited.isEmpty else { return }
    await gate.exports.wait(for: awaited)
    if engine.isHalted { throw HaltedBesideAFailure(step: step.id) }
    try engine.checkInterrupted()
  }
}

/// A step's place at the run's ``ExportGate``: the gate, and the step's index in the run.
struct GatePlace: Sendable {
  let exports: ExportGate
  let index: Int
  /// The steps of the run this one started after (an operation starts after every step before it).
  let stepsBefore: [String]
}

/// What a child task of ``StepExecution/run()`` returns: the action's name and how it ended.
///
/// A struct, not the tuple `(String, Result<ActionOutcome, Error>)`: with that tuple as the task
/// group's child result, the release build of Swift 6.3.1 on Linux handed `group.next()` a
/// corrupt name (a crash in `swift_retain`, or an action reported as never finished), while the
/// debug build worked.
struct Completion: Sendable {
  let name: String
  let result: Result<ActionOutcome, Error>
}

/// One step of a run that ran beside others: its index in the run, and how it ended.
struct StepCompletion: Sendable {
  let index: Int
  let result: Result<[String: ActionOutcome], Error>
}

/// A step stopped early because another step of the run failed (the engine reports that failure).
struct HaltedBesideAFailure: Error, Sendable {
  let step: String
}

/// The answers of a step's reads in one run (``StepExecution``).
struct AnsweredReads: Sendable {
  /// By the command as shown (its values filled in).
  var byCommand: [String: ProcessOutput] = [:]
  /// The standard output of each read action that ran, by action name (``Settlement/unlisted``).
  var byAction: [String: String] = [:]
}
