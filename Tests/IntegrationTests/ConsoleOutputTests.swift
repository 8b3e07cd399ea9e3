import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// What an operator sees: a live line and colour on a terminal, plain lines in CI, machine-readable status.
final class ConsoleOutputTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// Runs the tool under a pseudo-terminal (`script`) and returns everything it wrote.
  func runOnTerminal(
    _ workspace: Workspace, _ arguments: [String], environment extra: [String: String]
  ) async throws -> ToolRun {
    let words =
      [
        try Workspace.binary(), "--config", workspace.configPath, "--state-dir",
        workspace.stateDirectory,
        "--endpoint-url", workspace.endpoint,
      ] + arguments
    let line = words.map(shellQuoted).joined(separator: " ")
    let invocation = Invocation(
      executable: "script", arguments: ["-qefc", line, "/dev/null"],
      environment: [
        "PATH": Workspace.shimmedPath, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
      ].merging(extra) { $1 },
      workingDirectory: workspace.directory.path)
    let output = try await ProcessRunner().run(invocation)
    guard case .exited(let code) = output.termination else {
      throw HarnessError.missing("script was killed")
    }
    return ToolRun(
      status: code, signaled: false, stdout: output.stdoutText, stderr: output.stderrText)
  }

  func testTerminalShowsLiveLineAndColour() async throws {
    let workspace = try Workspace()
    let terminal = try await runOnTerminal(
      workspace, ["run", "network", "--yes"],
      environment: ["TERM": "xterm-256color", "NO_COLOR": ""])
    XCTAssertEqual(terminal.status, 0, terminal.summary)
    XCTAssertTrue(
      terminal.stdout.contains("\r\u{1B}[2K"), "no live line: \(terminal.stdout.debugDescription)")
    XCTAssertTrue(terminal.stdout.contains("waiting network/nat-gateway-available"))
    XCTAssertTrue(terminal.stdout.contains("\u{1B}[32m"), "no colour on a terminal")

    // NO_COLOR on a terminal: still readable, no escape codes at all.
    let noColor = try await runOnTerminal(
      workspace, ["status"], environment: ["TERM": "xterm-256color", "NO_COLOR": "1"])
    XCTAssertEqual(noColor.status, 0, noColor.summary)
    XCTAssertTrue(noColor.stdout.contains("2.1 network"))
    XCTAssertFalse(noColor.stdout.contains("\u{1B}"), noColor.stdout.debugDescription)
    let flag = try await runOnTerminal(
      workspace, ["--no-color", "plan"], environment: ["TERM": "xterm-256color", "NO_COLOR": ""])
    XCTAssertFalse(flag.stdout.contains("\u{1B}"), flag.stdout.debugDescription)

  }

  func testEveryHelpMentionsEveryOptionOfItsCommand() async throws {
    let workspace = try Workspace()
    let main = try await workspace.runRaw(["--help"])
    XCTAssertEqual(main.status, 0)
    for option in CLISpec.global {
      XCTAssertTrue(main.stdout.contains("--\(option.long)"), option.long)
    }
    for command in CLISpec.commands {
      XCTAssertTrue(main.stdout.contains("  \(command.name) "), command.name)
      let help = try await workspace.runRaw([command.name, "--help"])
      XCTAssertEqual(help.status, 0, help.summary)
      for option in command.options + CLISpec.global {
        XCTAssertTrue(
          help.stdout.contains("--\(option.long)"), "\(command.name) --help lacks --\(option.long)")
      }
    }
  }
}

/// A validator for the subset of JSON Schema the docs use: type, required, properties, items,
/// additionalProperties (as a schema) and enum. Returns the problems found.
func validate(_ value: Any, against schema: [String: Any], at path: String) -> [String] {
  var problems: [String] = []
  if let type = schema["type"] as? String {
    let matches: Bool
    switch type {
    case "object": matches = value is [String: Any]
    case "array": matches = value is [Any]
    case "string": matches = value is String
    case "integer":
      matches = (value as? NSNumber).map { $0.doubleValue.rounded() == $0.doubleValue } ?? false
    case "boolean": matches = value is Bool
    default: matches = true
    }
    if !matches { return ["\(path): expected \(type), got \(value)"] }
  }
  if let choices = schema["enum"] as? [Any] {
    if !choices.contains(where: { "\($0)" == "\(value)" }) {
      problems.append("\(path): \(value) is not one of \(choices)")
    }
  }
  if let object = value as? [String: Any] {
    for key in schema["required"] as? [String] ?? [] where object[key] == nil {
      problems.append("\(path): missing \(key)")
    }
    let properties = schema["properties"] as? [String: Any] ?? [:]
    for (key, item) in object {
      if let sub = properties[key] as? [String: Any] {
        problems += validate(item, against: sub, at: "\(path).\(key)")
      } else if let extra = schema["additionalProperties"] as? [String: Any] {
        problems += validate(item, against: extra, at: "\(path).\(key)")
      } else if !properties.isEmpty {
        problems.append("\(path): unexpected field \(key)")
      }
    }
  }
  if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
    for (index, item) in array.enumerated() {
      problems += validate(item, against: items, at: "\(path)[\(index)]")
    }
  }
  return problems
}
