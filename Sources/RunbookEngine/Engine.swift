import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Runs steps: resolves commands, asks, journals, runs, captures, records.
///
/// The only part of the tool that touches the checkpoint. It never prints: everything goes to the reporter.
package final class Engine<Configuration: RunConfiguration>: Sendable {
  package let deployment: Configuration
  package let state: any StateStore
  package let catalogue: [any Step<Configuration>]
  let runner: any CommandRunner
  let reporter: any Reporter
  let prompter: (any Prompter)?
  package let resolver: Resolver
  let options: RunOptions
  /// The region every call goes to (a checkpoint belongs to one).
  package let region: String
  /// How the tools' output reads (error codes, throttling, request ids).
  let dialect: any OutputDialect
  let preflight: Preflight
  /// The process environment (secrets supplied through variables are read from it).
  let environment: [String: String]
  private let interruption = Mutex<String?>(nil)
  /// Set when a step of the run failed: the steps running beside it start no new action.
  let halted = Mutex(false)
  /// This run's ``ContextValue/runDirectory``, while a run is going on.
  let runDirectory = Mutex<String?>(nil)
  /// Where this run's commands keep their files (``StateStore/scratchDirectory``), while a run is
  /// going on.
  let privateFolder = Mutex<String?>(nil)
  /// The actions (`step/action`) whose command created their resource in this run
  /// (``Settlement``).
  let createdThisRun = Mutex<Set<String>>([])
  /// The exports whose resources this run created, recovered or found (adopted, or existing
  /// already), or a run that ended moments ago
  /// did (killed right after a create): a command naming one may meet a service that does not see
  /// it yet (``RetryPolicy/notVisibleYetSeconds``). An id recorded longer ago is not in it: not
  /// found, it is really gone.
  let freshExports = Mutex<Set<String>>([])
  /// The action (`step/action`) of this run that makes each export, for the critical path.
  let producers = Mutex<[String: String]>([:])
  /// How urgent each action (`step/action`) of this run is for a free slot (``WaitPriority``);
  /// empty when the operator answers each write, who then sees them in the runbook's order.
  let priorities = Mutex<[String: Double]>([:])
  /// When each action of this run ran (``CriticalPath``).
  let timings = RunTimings()

  /// - Parameters:
  ///   - toolArguments: arguments appended to every command of a tool (the aws CLI's global options).
  ///   - programs: where some programs are, by the name commands use (``Resolver/programs``).
  package init(
    configuration: Configuration, state: any StateStore, catalogue: [any Step<Configuration>],
    runner: any CommandRunner, reporter: any Reporter, prompter: (any Prompter)?,
    region: String, toolArguments: [String: [String]], dialect: any OutputDialect,
    preflight: Preflight, secrets: SecretStore = SecretStore(), options: RunOptions,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    programs: [String: String] = [:]
  ) {
    self.environment = environment
    self.deployment = configuration
    self.state = state
    self.catalogue = catalogue
    self.runner = runner
    self.reporter = reporter
    self.prompter = options.assumeYes ? nil : prompter
    self.resolver = Resolver(toolArguments: toolArguments, secrets: secrets, programs: programs)
    self.options = options
    self.region = region
    self.dialect = dialect
    self.preflight = preflight
  }

  /// Asks the engine to stop: no new command starts, and the run ends with ``Interrupted``.
  /// (The caller stops the running children through its runner.)
  package func interrupt(reason: String) {
    interruption.withLock { if $0 == nil { $0 = reason } }
  }

  func checkInterrupted() throws {
    if let reason = interruption.withLock({ $0 }) { throw Interrupted(reason) }
  }

  /// Whether a step of the run failed (its siblings then start no new action).
  var isHalted: Bool { halted.withLock { $0 } }

  // MARK: - Checkpoint access

  /// The checkpoint, validated against this deployment and region; nil when none exists yet.
  package func loadCheckpoint() async throws -> Checkpoint? {
    guard let checkpoint = try await state.load() else { return nil }
    if checkpoint.deployment != deployment.name {
      throw CheckpointError.foreignDeployment(
        file: state.stateFile, checkpoint: checkpoint.deployment, configuration: deployment.name)
    }
    if checkpoint.region != region {
      throw CheckpointError.foreignRegion(
        file: state.stateFile, checkpoint: checkpoint.region, configuration: region)
    }
    return checkpoint
  }

  func contextValues(_ checkpoint: Checkpoint?) -> [String: String] {
    var values = checkpoint?.exports ?? [:]
    values[ContextValue.region] = region
    if let checkpoint {
      values[ContextValue.lineage] = checkpoint.lineage
      if let account = checkpoint.account { values[ContextValue.account] = account }
    }
    if let directory = runDirectory.withLock({ $0 }) {
      values[ContextValue.runDirectory] = directory
    }
    return values
  }
}
