import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// `parseCommandLine` and the help texts made from the same option specs.
final class CommandLineTests: XCTestCase {
  func testGlobalOptionsBeforeAndAfterTheCommand() throws {
    let parsed = try parseCommandLine([
      "-c", "runbooks/local.json", "--state-dir", "/tmp/s", "run", "network", "--endpoint-url",
      "http://127.0.0.1:5000", "security", "-y", "--profile", "ops",
    ])
    XCTAssertEqual(parsed.command, "run")
    XCTAssertEqual(parsed.arguments, ["network", "security"])
    XCTAssertEqual(
      parsed.options,
      [
        "config": "runbooks/local.json", "state-dir": "/tmp/s",
        "endpoint-url": "http://127.0.0.1:5000", "yes": "true", "profile": "ops",
      ])
    XCTAssertTrue(parsed.flag("yes"))
    XCTAssertFalse(parsed.flag("verbose"))
  }

  func testOptionEqualsValue() throws {
    let parsed = try parseCommandLine([
      "--config=a=b.json", "run", "--jobs=3", "--region=eu-west-1", "--state-dir=",
    ])
    XCTAssertEqual(parsed.options["config"], "a=b.json")
    XCTAssertEqual(parsed.options["jobs"], "3")
    XCTAssertEqual(parsed.options["region"], "eu-west-1")
    XCTAssertEqual(parsed.options["state-dir"], "")
  }

  func testShortFlags() throws {
    let parsed = try parseCommandLine(["-v", "run", "-y", "-j", "2", "-c", "x.json", "-h"])
    XCTAssertEqual(
      parsed.options,
      ["verbose": "true", "yes": "true", "jobs": "2", "config": "x.json", "help": "true"])
    XCTAssertEqual(parsed.arguments, [])
  }

  func testDoubleDashEndsOptions() throws {
    let parsed = try parseCommandLine(["run", "--", "--yes", "-v"])
    XCTAssertEqual(parsed.arguments, ["--yes", "-v"])
    XCTAssertEqual(parsed.options, [:])
  }

  func testMissingValue() {
    XCTAssertEqual(
      usageError(["run", "--jobs"]), "option '--jobs' needs a value (N)")
    XCTAssertEqual(usageError(["status", "-c"]), "option '--config' needs a value (FILE)")
  }

  func testFlagWithAValue() {
    XCTAssertEqual(usageError(["run", "--yes=no"]), "option '--yes' takes no value")
  }

  func testUnknownOptions() {
    XCTAssertEqual(
      usageError(["run", "--frobnicate"]), "unknown option '--frobnicate' (see runbook --help)")
    XCTAssertEqual(usageError(["run", "-x"]), "unknown option '-x' (see runbook --help)")
    XCTAssertEqual(usageError(["run", "-yv"]), "unknown option '-yv' (see runbook --help)")
  }

  func testCommandOptionUsedWithAnotherCommand() {
    XCTAssertEqual(
      usageError(["status", "--jobs", "2"]), "option '--jobs' belongs to 'runbook run'")
    XCTAssertEqual(usageError(["run", "--json"]), "option '--json' belongs to 'runbook status'")
    XCTAssertEqual(usageError(["plan", "--adopt"]), "option '--adopt' belongs to 'runbook run'")
  }

  func testUnknownCommand() {
    let names = CLISpec.commands.map(\.name)
    XCTAssertTrue(names.starts(with: ["plan", "run", "status", "env", "reset", "log"]), "\(names)")
    XCTAssertEqual(
      usageError(["deploy"]),
      "unknown command 'deploy' (commands: \(names.joined(separator: ", ")))")
  }

  func testNoCommandIsAllowedForHelp() throws {
    let parsed = try parseCommandLine(["--help"])
    XCTAssertNil(parsed.command)
    XCTAssertTrue(parsed.flag("help"))
  }

  // MARK: - Help

  func testMainHelpMentionsEveryGlobalOptionCommandAndStep() {
    let help = CLISpec.mainHelp()
    for option in CLISpec.global {
      XCTAssertTrue(help.contains("--\(option.long)"), option.long)
      if let short = option.short { XCTAssertTrue(help.contains("-\(short), --\(option.long)")) }
      if let value = option.value { XCTAssertTrue(help.contains("--\(option.long) \(value)")) }
    }
    for command in CLISpec.commands {
      XCTAssertTrue(help.contains("\n  \(command.name) "), command.name)
      XCTAssertTrue(help.contains(command.summary), command.name)
    }
    for step in Catalogue.guideOrder { XCTAssertTrue(help.contains(step), step) }
    for status in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "] {
      XCTAssertTrue(help.contains(status))
    }
  }

  func testEveryCommandHelpMentionsEveryOptionItAccepts() throws {
    for command in CLISpec.commands {
      let help = CLISpec.help(for: command)
      XCTAssertTrue(help.hasPrefix("usage: runbook [GLOBAL OPTIONS] \(command.name)"), command.name)
      for option in command.options + CLISpec.global {
        XCTAssertTrue(help.contains("--\(option.long)"), "\(command.name): --\(option.long)")
        if let short = option.short {
          XCTAssertTrue(help.contains("-\(short), --\(option.long)"), "\(command.name): -\(short)")
        }
        // Whatever the help shows, the parser accepts with this command.
        var argv = [command.name, "--\(option.long)"]
        if option.value != nil { argv.append("1") }
        XCTAssertNoThrow(try parseCommandLine(argv), "\(command.name) --\(option.long)")
      }
      for other in CLISpec.commands where other.name != command.name {
        for option in other.options where !command.options.contains(option) {
          XCTAssertFalse(
            help.contains("--\(option.long)"), "\(command.name) help shows --\(option.long)")
        }
      }
    }
  }

  private func usageError(_ argv: [String], file: StaticString = #filePath, line: UInt = #line)
    -> String?
  {
    assertThrowsNow(UsageError.self, file: file, line: line) { try parseCommandLine(argv) }?.message
  }
}
