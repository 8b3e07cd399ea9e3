import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import Synchronization
import UniSyncRunbook

#if canImport(Glibc)
  import Glibc
#endif

/// Where text goes. The executable passes stdout/stderr; tests pass a buffer.
public protocol TextOutput: Sendable {
  func write(_ text: String)
  /// Whether this output is a terminal (live lines and colour are allowed).
  var isTerminal: Bool { get }
}

/// A file descriptor as a text output; writes go straight to the descriptor (no buffering, so
/// our lines never fall behind a child's).
public struct FileOutput: TextOutput {
  package let descriptor: Int32
  package init(descriptor: Int32) { self.descriptor = descriptor }
  public static let standardOutput = FileOutput(descriptor: STDOUT_FILENO)
  public static let standardError = FileOutput(descriptor: STDERR_FILENO)

  public func write(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
      let written = bytes.withUnsafeMutableBytes {
        Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset)
      }
      if written < 0 {
        if errno == EINTR { continue }
        return
      }
      offset += written
    }
    bytes.removeAll()
  }

  public var isTerminal: Bool { isatty(descriptor) == 1 }
}

/// Collects text in memory (tests).
package final class BufferOutput: TextOutput {
  private let buffer = Mutex("")
  package let isTerminal: Bool
  package init(isTerminal: Bool = false) { self.isTerminal = isTerminal }
  package func write(_ text: String) { buffer.withLock { $0 += text } }
  package var text: String { buffer.withLock { $0 } }
}

/// Colour and live-line choices for one output.
package struct Style: Sendable {
  package var color: Bool
  package var live: Bool

  package init(color: Bool, live: Bool) {
    self.color = color
    self.live = live
  }

  /// Colour only on a terminal whose TERM is not `dumb`, and never with NO_COLOR or --no-color.
  package static func detect(output: TextOutput, environment: [String: String], noColor: Bool)
    -> Style
  {
    let terminal = output.isTerminal && environment["TERM"] != "dumb"
    let color = terminal && !noColor && (environment["NO_COLOR"] ?? "").isEmpty
    return Style(color: color, live: terminal)
  }

  func paint(_ text: String, _ code: String) -> String {
    color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
  }
  func bold(_ text: String) -> String { paint(text, "1") }
  func green(_ text: String) -> String { paint(text, "32") }
  func yellow(_ text: String) -> String { paint(text, "33") }
  func red(_ text: String) -> String { paint(text, "31") }
  func dim(_ text: String) -> String { paint(text, "2") }
}

/// Renders run events: a header per step, a line per action, a live line for waits on a terminal,
/// plain timestamped lines otherwise.
package final class ConsoleReporter: Reporter {
  let output: TextOutput
  let errors: TextOutput
  let style: Style
  let verbose: Bool
  /// Length of the live line on screen (0 when none).
  private let liveLineShown = Mutex(0)
  private static let spinner = ["|", "/", "-", "\\"]
  private let frame = Mutex(0)

  package init(output: TextOutput, errors: TextOutput, style: Style, verbose: Bool) {
    self.output = output
    self.errors = errors
    self.style = style
    self.verbose = verbose
  }

  package func report(_ event: RunEvent) {
    switch event {
    case .stepStarted(let step, let section, let title):
      line(style.bold("\(section) \(title) (\(step))"))
    case .commandStarted(let step, let action, let command):
      if verbose { line(style.dim("  $ \(command)") + style.dim("   [\(step)/\(action)]")) }
    case .actionFinished(let step, let action, let outcome, let detail):
      let label = "\(outcome.rawValue)".padding(toLength: 16, withPad: " ", startingAt: 0)
      let painted: String
      switch outcome {
      case .created, .recovered, .adopted, .confirmed, .updated, .deleted:
        painted = style.green(label)
      case .alreadyDone, .read, .kept: painted = style.dim(label)
      case .skipped, .pendingManual: painted = style.yellow(label)
      case .failed: painted = style.red(label)
      }
      line("  \(painted) \(step)/\(action)" + (detail.map { "  \($0)" } ?? ""))
    case .actionFailed(let step, let action, let message):
      line(
        "  " + style.red("failed".padding(toLength: 16, withPad: " ", startingAt: 0))
          + " \(step)/\(action)  "
          + (message.split(separator: "\n").first.map(String.init) ?? ""))
    case .waiting(let step, let action, let state, let elapsed):
      let text = "waiting \(step)/\(action): \(state) (\(Int(elapsed))s)"
      if style.live {
        let index = frame.withLock { value in
          value += 1
          return value
        }
        let line = "  \(Self.spinner[index % 4]) \(text)"
        output.write(clearSequence() + line)
        liveLineShown.withLock { $0 = line.count }
      } else {
        line("  \(timestamp()) \(text)")
      }
    case .retrying(let step, let action, let reason, let attempt, let delay):
      line(
        "  " + style.yellow("retry".padding(toLength: 16, withPad: " ", startingAt: 0))
          + " \(step)/\(action)  \(reason), attempt \(attempt + 1) in \(String(format: "%.1f", delay))s"
      )
    case .manual(let step, let action, let instructions):
      line(
        "  " + style.yellow("manual".padding(toLength: 16, withPad: " ", startingAt: 0))
          + " \(step)/\(action)")
      for text in instructions.split(separator: "\n", omittingEmptySubsequences: false) {
        line("      \(text)")
      }
    case .progress(_, _, let message):
      for text in message.split(separator: "\n", omittingEmptySubsequences: false) {
        line("    \(text)")
      }
    case .stepFinished(let step, let elapsed):
      line(style.dim("  \(step) finished in \(String(format: "%.1f", elapsed))s"))
    case .warning(let message):
      clearLiveLine()
      errors.write(style.yellow("warning: ") + message + "\n")
    case .note(let message):
      line(message)
    }
  }

  /// Returns to the start of the live line and blanks it: an escape sequence with colour, spaces without
  /// (NO_COLOR output carries no escape codes at all).
  private func clearSequence() -> String {
    let width = liveLineShown.withLock { $0 }
    if style.color { return "\r\u{1B}[2K" }
    return width == 0 ? "\r" : "\r" + String(repeating: " ", count: width) + "\r"
  }

  private func clearLiveLine() {
    let width = liveLineShown.withLock { $0 }
    guard width > 0 else { return }
    output.write(clearSequence())
    liveLineShown.withLock { $0 = 0 }
  }

  private func line(_ text: String) {
    clearLiveLine()
    output.write(text + "\n")
  }
}

/// Asks on the terminal: `[y]es / [n]o, skip / [a]ll in this step / [q]uit`.
package final class TerminalPrompter: Prompter {
  let output: TextOutput
  let style: Style
  let readLine: @Sendable () -> String?

  package init(
    output: TextOutput, style: Style,
    readLine: @escaping @Sendable () -> String? = { Swift.readLine() }
  ) {
    self.output = output
    self.style = style
    self.readLine = readLine
  }

  package func approve(step: String, action: String, summary: String, command: String) -> Approval {
    output.write("\n  \(style.bold("\(step)/\(action)")): \(summary)\n    \(command)\n")
    while true {
      output.write("  run it? [y]es / [n]o, skip / [a]ll in this step / [q]uit: ")
      guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else {
        return .quit
      }
      switch answer {
      case "y", "yes": return .yes
      case "n", "no", "s", "skip": return .skip
      case "a", "all": return .all
      case "q", "quit": return .quit
      default: output.write("  please answer y, n, a or q\n")
      }
    }
  }

  package func confirmManual(step: String, action: String, instructions: String) -> Bool {
    while true {
      output.write("  done by hand? [y]es, done / [n]o, later: ")
      guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else {
        return false
      }
      switch answer {
      case "y", "yes": return true
      case "n", "no", "": return false
      default: output.write("  please answer y or n\n")
      }
    }
  }
}

extension TerminalPrompter {
  /// Reads a line from the terminal with echo turned off.
  package func secret(prompt: String) -> String? {
    output.write("  \(prompt) (input hidden): ")
    var saved = termios()
    let hasTerminal = tcgetattr(STDIN_FILENO, &saved) == 0
    if hasTerminal {
      var silent = saved
      silent.c_lflag &= ~tcflag_t(ECHO)
      tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
    }
    defer {
      if hasTerminal { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
      output.write("\n")
    }
    return readLine()
  }
}
