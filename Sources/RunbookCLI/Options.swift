import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

/// One command-line option; help texts and the parser are both made from these.
package struct OptionSpec: Sendable, Hashable {
  package var long: String
  package var short: Character?
  /// The value's name in help (`FILE`), or nil for a flag.
  package var value: String?
  package var help: String

  package init(_ long: String, short: Character? = nil, value: String? = nil, help: String) {
    self.long = long
    self.short = short
    self.value = value
    self.help = help
  }

  var usage: String {
    var text = short.map { "-\($0), " } ?? "    "
    text += "--\(long)"
    if let value { text += " \(value)" }
    return text
  }
}

/// One subcommand.
package struct CommandSpec: Sendable, Hashable {
  package var name: String
  package var arguments: String
  package var summary: String
  package var options: [OptionSpec]
}

/// The whole command-line contract.
package enum CLISpec {
  package static let global: [OptionSpec] = [
    OptionSpec(
      "config", short: "c", value: "FILE",
      help: "deployment parameters (default: runbooks/unisync-ecs.json)"),
    OptionSpec(
      "state-dir", value: "DIR",
      help:
        "checkpoint, journal, lock and logs (default: .runbook/DEPLOYMENT); with --state: the logs"),
    OptionSpec(
      "state", value: "S3URL",
      help:
        "keep checkpoint, journal and lock in s3://BUCKET/PREFIX (default prefix: runbook/DEPLOYMENT; also the configuration's 'state')"
    ),
    OptionSpec(
      "endpoint-url", value: "URL",
      help:
        "add --endpoint-url URL to every aws call (AWS_ENDPOINT_URL in the environment does the same)"
    ),
    OptionSpec("profile", value: "NAME", help: "passed to every aws call"),
    OptionSpec(
      "region", value: "NAME",
      help: "passed to every aws call (default: the configuration's region)"),
    OptionSpec("yes", short: "y", help: "never ask; needed to change anything without a terminal"),
    OptionSpec("no-color", help: "no colour (also: NO_COLOR, or stdout not a terminal)"),
    OptionSpec("verbose", short: "v", help: "print every command as it starts"),
    OptionSpec("help", short: "h", help: "show help (for a command: runbook COMMAND --help)"),
  ]

  static let jobsOption = OptionSpec(
    "jobs", short: "j", value: "N",
    help: "independent actions run at once (default 4; 1 when asking)")

  /// `status` and `history`: the same option, so each command's help names only its own.
  static let jsonOption = OptionSpec(
    "json",
    help: "print it as JSON (schemas: docs/status-schema.json, docs/history-schema.json)")

  /// `plan` and `run`: converge with what AWS has and what today's configuration says.
  static let refreshOption = OptionSpec(
    "refresh",
    help:
      "read back what the steps made first: done actions whose resource is missing or whose setting changed run again (plan: shows them); exit 5 when a resource would have to be replaced"
  )

  /// `destroy` and `unlock`: go on without the typed deployment name.
  static let forceOption = OptionSpec(
    "force",
    help: "with --yes: go on without asking for the deployment name (--yes alone is refused)")

  /// Options of `run` that say what verify and update do (plan takes them too).
  static let operationOptions: [OptionSpec] = [
    OptionSpec(
      "tag", value: "TAG",
      help:
        "tag for the images built (default: the build context's short git commit, else the UTC time); a resumed run keeps its tag; 'update' needs it"
    ),
    OptionSpec(
      "service", value: "NAME",
      help: "update (or verify) only this service; repeat for more (default: all)"),
    OptionSpec(
      "rollback",
      help: "update: put the services back on the task definition recorded before the last update"),
    OptionSpec(
      "follow", help: "verify: keep polling (health, services, new log lines) until Ctrl-C"),
  ]

  package static let commands: [CommandSpec] = [
    CommandSpec(
      name: "plan", arguments: "[STEP...]",
      summary:
        "every command the steps would run, in order, placeholders for unknown values; runs nothing",
      options: [refreshOption] + operationOptions.filter { $0.long != "follow" }),
    CommandSpec(
      name: "run", arguments: "[STEP...]",
      summary: "run steps (default: every step not yet done, in guide order)",
      options: [
        OptionSpec("dry-run", help: "print the plan instead of running (same as 'plan')"),
        OptionSpec(
          "adopt",
          help:
            "use existing resources found by name even without this tool's tags (never deleted by destroy)"
        ),
        jobsOption,
        refreshOption,
        OptionSpec(
          "overwrite-secrets",
          help:
            "put this run's values into secrets that exist already (otherwise an existing secret keeps its value)"
        ),
      ] + operationOptions),
    CommandSpec(
      name: "status", arguments: "",
      summary: "each step and action: done / pending / failed, with every export",
      options: [
        jsonOption
      ]),
    CommandSpec(
      name: "env", arguments: "",
      summary: "'export NAME=value' lines for every export (eval-able, secrets never included)",
      options: []),
    CommandSpec(
      name: "reset", arguments: "STEP",
      summary: "forget a step's checkpoint entries; resources are left alone",
      options: []),
    CommandSpec(
      name: "log", arguments: "", summary: "print the latest run's audit log", options: []),
    CommandSpec(
      name: "history", arguments: "",
      summary:
        "every run of the deployment, newest first: when, who, command, outcome, what it changed",
      options: [
        jsonOption
      ]),
    CommandSpec(
      name: "drift", arguments: "[STEP...]",
      summary:
        "read back what the steps made (missing, changed by hand, or tagged and not recorded: extra) with what converges each; exit 4 on a finding",
      options: [jsonOption]),
    CommandSpec(
      name: "destroy", arguments: "[STEP...]",
      summary:
        "delete, in reverse order, what this deployment created (never adopted resources); asks for the deployment name",
      options: [
        forceOption,
        OptionSpec("skip-final-snapshot", help: "delete the RDS instance without a final snapshot"),
        OptionSpec(
          "force-delete-without-recovery",
          help:
            "delete secrets at once instead of after the configured recovery window (asks again)"),
        jobsOption,
      ]),
    CommandSpec(
      name: "unlock", arguments: "",
      summary:
        "release the S3 lock of a run that died (shows the holder, asks for the deployment name)",
      options: [forceOption]),
    CommandSpec(
      name: "state", arguments: "push|pull",
      summary:
        "copy the checkpoint and journal from --state-dir to --state (push) or back (pull); refuses another lineage",
      options: []),
    CommandSpec(
      name: "policy", arguments: "[STEP...]",
      summary:
        "the least-privilege IAM policy (JSON) the credentials need to run these steps and destroy them (default: every step)",
      options: []),
    CommandSpec(
      name: "task", arguments: "run SERVICE -- CMD...",
      summary:
        "run CMD once as a Fargate task of the task definition SERVICE runs (its network, its logs printed); exits with its exit code",
      options: []),
    CommandSpec(
      name: "doctor", arguments: "",
      summary:
        "check tools, credentials, configuration, build contexts and the state directory (exit 1 on a FAIL)",
      options: []),
  ]

  /// An option's usage padded to the help column (a longer one keeps two spaces after it).
  static func column(_ usage: String) -> String {
    usage.count < 26 ? usage.padding(toLength: 26, withPad: " ", startingAt: 0) : usage + "  "
  }

  package static func command(_ name: String) -> CommandSpec? { commands.first { $0.name == name } }

  package static func mainHelp() -> String {
    var lines = ["usage: runbook [GLOBAL OPTIONS] COMMAND [ARGS]", "", "global options:"]
    lines += global.map {
      "  " + $0.usage.padding(toLength: 26, withPad: " ", startingAt: 0) + $0.help
    }
    lines += ["", "commands:"]
    lines += commands.map {
      let usage = "\($0.name) \($0.arguments)"
      return "  "
        + (usage.count < 22
          ? usage.padding(toLength: 22, withPad: " ", startingAt: 0) : usage + "  ")
        + $0.summary
    }
    lines += [
      "", "steps: \(Catalogue.guideOrder.joined(separator: " "))",
      "exit: 0 done · 1 a step failed (rerun resumes) · 2 usage, configuration or checkpoint error (nothing run) · 3 another run holds the lock, or the S3 state changed under this run · 4 drift found something · 5 --refresh would have to replace a resource (nothing written) · 130 interrupted",
    ]
    return lines.joined(separator: "\n") + "\n"
  }

  package static func help(for spec: CommandSpec) -> String {
    var lines = [
      "usage: runbook [GLOBAL OPTIONS] \(spec.name) \(spec.arguments)", "", spec.summary,
    ]
    if !spec.options.isEmpty {
      lines += ["", "options:"]
      lines += spec.options.map { "  " + column($0.usage) + $0.help }
    }
    lines += ["", "global options:"]
    lines += global.map {
      "  " + $0.usage.padding(toLength: 26, withPad: " ", startingAt: 0) + $0.help
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

/// A parsed command line.
package struct ParsedCommandLine: Sendable, Hashable {
  package var command: String?
  package var arguments: [String] = []
  /// Options by long name; flags map to "true". An option given twice keeps its last value here.
  package var options: [String: String] = [:]
  /// Every value of each option, in order (`--service a --service b`).
  package var values: [String: [String]] = [:]

  package func flag(_ name: String) -> Bool { options[name] != nil }
}

/// Parses argv (without the program name). Global options may stand before or after the command.
package func parseCommandLine(_ argv: [String]) throws -> ParsedCommandLine {
  var parsed = ParsedCommandLine()
  var index = 0
  var onlyArguments = false
  while index < argv.count {
    let word = argv[index]
    index += 1
    if onlyArguments || !word.hasPrefix("-") || word == "-" {
      if parsed.command == nil { parsed.command = word } else { parsed.arguments.append(word) }
      continue
    }
    if word == "--" {
      onlyArguments = true
      continue
    }
    var name: String
    var inlineValue: String?
    if word.hasPrefix("--") {
      name = String(word.dropFirst(2))
      if let equals = name.firstIndex(of: "=") {
        inlineValue = String(name[name.index(after: equals)...])
        name = String(name[..<equals])
      }
    } else {
      guard word.count == 2, let letter = word.last else {
        throw UsageError("unknown option '\(word)' (see runbook --help)")
      }
      let all = CLISpec.global + CLISpec.commands.flatMap(\.options)
      guard let spec = all.first(where: { $0.short == letter }) else {
        throw UsageError("unknown option '\(word)' (see runbook --help)")
      }
      name = spec.long
    }
    let commandOptions = parsed.command.flatMap { CLISpec.command($0) }?.options ?? []
    guard let spec = (CLISpec.global + commandOptions).first(where: { $0.long == name }) else {
      let owner = CLISpec.commands.first { $0.options.contains { $0.long == name } }
      if let owner {
        throw UsageError("option '--\(name)' belongs to 'runbook \(owner.name)'")
      }
      throw UsageError("unknown option '--\(name)' (see runbook --help)")
    }
    if spec.value != nil {
      if let inlineValue {
        parsed.options[name] = inlineValue
      } else {
        guard index < argv.count else {
          throw UsageError("option '--\(name)' needs a value (\(spec.value!))")
        }
        parsed.options[name] = argv[index]
        index += 1
      }
      parsed.values[name, default: []].append(parsed.options[name]!)
    } else {
      guard inlineValue == nil else { throw UsageError("option '--\(name)' takes no value") }
      parsed.options[name] = "true"
    }
  }
  if let command = parsed.command, CLISpec.command(command) == nil {
    throw UsageError(
      "unknown command '\(command)' (commands: \(CLISpec.commands.map(\.name).joined(separator: ", ")))"
    )
  }
  return parsed
}
