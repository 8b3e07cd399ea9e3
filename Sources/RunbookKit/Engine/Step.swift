import Foundation

/// A step module: one numbered section of the deployment guide.
public protocol Step: Sendable {
  /// The name used on the command line (`network`).
  var id: String { get }
  /// The guide section it implements (`2.1`).
  var section: String { get }
  var title: String { get }
  /// The ordered actions of the step for this deployment.
  func actions(for deployment: Deployment) -> [Action]
}

extension Step {
  /// Exports this step needs from earlier steps: referenced by its actions and produced by none of them.
  public func requiredExports(for deployment: Deployment) -> [String] {
    let actions = actions(for: deployment)
    let produced = Set(actions.compactMap(\.capture?.export))
    var seen = Set<String>()
    return actions.flatMap(\.exportReferences).filter {
      !produced.contains($0) && !ContextValue.names.contains($0) && seen.insert($0).inserted
    }
  }

  /// Exports this step produces.
  public func producedExports(for deployment: Deployment) -> [String] {
    actions(for: deployment).compactMap(\.capture?.export)
  }
}

/// Values every command may reference that no action produces: they come from the run's context.
public enum ContextValue {
  /// The AWS account of the credentials (from `sts get-caller-identity`).
  public static let account = "ACCOUNT_ID"
  /// The region every call goes to.
  public static let region = "REGION"
  /// The checkpoint's lineage id, carried in a tag by every resource the tool creates.
  public static let lineage = "RUNBOOK_LINEAGE"
  public static let names: Set<String> = [account, region, lineage]
}

/// What running an action does to the world.
public enum Effect: Sendable, Hashable {
  /// Only reads; safe to run again at any time, run without asking.
  case read
  /// Creates or changes something; journaled before it runs, confirmed in interactive mode.
  case write
  /// Something the operator does by hand (the tool cannot reach it); the text says what.
  case manual(String)
}

/// How a command's output becomes an export.
public struct Capture: Sendable, Hashable {
  /// The export it feeds, or nil when the value is only recorded on the action (an association id).
  public var export: String?
  /// A regular expression the whole trimmed output must match (`^vpc-[0-9a-f]+$`).
  public var pattern: String

  public init(export: String?, pattern: String) {
    self.export = export
    self.pattern = pattern
  }

  /// Whether `value` is a real captured value (aws prints `None` for a missing one).
  public func accepts(_ value: String) -> Bool {
    guard !value.isEmpty, value != "None" else { return false }
    return value.range(of: pattern, options: .regularExpression) != nil
  }
}

/// A read that finds what a write action would create, if it exists already.
public struct Lookup: Sendable, Hashable {
  public var command: Command
  /// What the output must match to count as found; defaults to the action's capture pattern.
  public var pattern: String?

  public init(_ command: Command, pattern: String? = nil) {
    self.command = command
    self.pattern = pattern
  }
}

/// Polling until a resource reaches a state.
public struct Wait: Sendable, Hashable {
  public var command: Command
  /// States that end the wait successfully.
  public var success: Set<String>
  /// States that end the wait with a failure.
  public var failure: Set<String>
  public var timeoutSeconds: Double
  public var intervalSeconds: Double

  public init(
    _ command: Command, until success: Set<String>, failOn failure: Set<String> = [],
    timeoutSeconds: Double, intervalSeconds: Double = 5
  ) {
    self.command = command
    self.success = success
    self.failure = failure
    self.timeoutSeconds = timeoutSeconds
    self.intervalSeconds = intervalSeconds
  }
}

/// One command of a step, with everything the engine needs to run it safely more than once.
public struct Action: Sendable, Hashable {
  /// Unique within its step; the checkpoint key is `step/name`.
  public var name: String
  /// One line saying what it does, in the guide's words.
  public var summary: String
  public var effect: Effect
  /// The command; for a wait, the command polled.
  public var command: Command
  public var capture: Capture?
  /// Finds the result of an earlier, unrecorded run by the tags this tool put on it.
  public var lookup: Lookup?
  /// Finds an existing resource by its name alone (used only with `--adopt`).
  public var adoptLookup: Lookup?
  /// AWS error codes that mean the work is already done (`InvalidPermission.Duplicate`).
  public var alreadyDoneErrors: Set<String>
  /// Safe to repeat as is (no lookup needed to reconcile an interrupted run).
  public var idempotent: Bool
  public var wait: Wait?
  /// Other actions of the step that must finish first, beyond those whose exports it uses.
  public var after: [String]

  public init(
    name: String, summary: String, effect: Effect, command: Command, capture: Capture? = nil,
    lookup: Lookup? = nil, adoptLookup: Lookup? = nil, alreadyDoneErrors: Set<String> = [],
    idempotent: Bool = false, wait: Wait? = nil, after: [String] = []
  ) {
    self.name = name
    self.summary = summary
    self.effect = effect
    self.command = command
    self.capture = capture
    self.lookup = lookup
    self.adoptLookup = adoptLookup
    self.alreadyDoneErrors = alreadyDoneErrors
    self.idempotent = idempotent
    self.wait = wait
    self.after = after
  }

  /// A write that creates something and captures its id.
  public static func create(
    _ name: String, _ summary: String, export: String?, pattern: String, command: Command,
    lookup: Command?, adoptLookup: Command? = nil, after: [String] = []
  ) -> Action {
    Action(
      name: name, summary: summary, effect: .write, command: command,
      capture: Capture(export: export, pattern: pattern), lookup: lookup.map { Lookup($0) },
      adoptLookup: adoptLookup.map { Lookup($0) }, after: after)
  }

  /// A read that polls `command` until its output is one of `success`.
  public static func waitUntil(
    _ name: String, _ summary: String, command: Command, success: Set<String>,
    failure: Set<String> = [], timeoutSeconds: Double, intervalSeconds: Double = 5,
    after: [String] = []
  ) -> Action {
    Action(
      name: name, summary: summary, effect: .read, command: command,
      wait: Wait(
        command, until: success, failOn: failure, timeoutSeconds: timeoutSeconds,
        intervalSeconds: intervalSeconds), after: after)
  }

  /// Exports used by any of this action's commands.
  public var exportReferences: [String] {
    var names = command.exportReferences
    names += lookup?.command.exportReferences ?? []
    names += adoptLookup?.command.exportReferences ?? []
    var seen = Set<String>()
    return names.filter { seen.insert($0).inserted }
  }

  public var isWrite: Bool { effect == .write }
  public var isManual: Bool { if case .manual = effect { true } else { false } }
}
