import Dispatch
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

/// Renders run events: a header per step, a line per action, plain timestamped lines when the
/// output is not a terminal.
///
/// On a terminal:
/// - a live line at the bottom shows every wait in progress: the state it read, how long it has
///   waited (counting every second, between polls too) and the state it waits for;
/// - steps that run beside each other keep their own blocks. The first step started prints as it
///   goes; the lines of a step started beside it are held, and printed (its header first) when the
///   screen is its own: when every step started before it has ended. No block is ever interleaved
///   with another's lines.
///
/// Call ``finish()`` when the run ends, however it ends: it prints what is still held (the steps
/// beside a failure) and clears the live line.
package final class ConsoleReporter: Reporter {
  let output: TextOutput
  let errors: TextOutput
  let style: Style
  let verbose: Bool
  private let screen = Mutex(Screen())
  private static let spinner = ["|", "/", "-", "\\"]

  /// What is on the terminal and what is held back (live mode only, but for ``Screen/shown``).
  private struct Screen {
    /// The step whose block is being printed; nil between steps.
    var owner: String?
    /// Steps started while another owned the screen, in the order they started.
    var queue: [String] = []
    /// The lines of the steps in ``queue``, header first.
    var held: [String: [String]] = [:]
    /// Steps of ``queue`` that have ended: their block is complete.
    var ended: Set<String> = []
    /// Waits in progress, by `step/action`, in the order they began.
    var waits: [LiveWait] = []
    /// Length of the live line on screen (0 when none).
    var shown = 0
    var frame = 0
    /// Redraws the live line every second while a wait is in progress.
    var ticker: (any DispatchSourceTimer)?
  }

  /// One wait in progress, as its last poll left it.
  private struct LiveWait {
    var key: String
    var step: String
    var state: String
    var until: [String]
    var elapsed: Double
    var reportedAt: Date
  }

  package init(output: TextOutput, errors: TextOutput, style: Style, verbose: Bool) {
    self.output = output
    self.errors = errors
    self.style = style
    self.verbose = verbose
  }

  deinit {
    screen.withLock { $0.ticker?.cancel() }
  }

  package func report(_ event: RunEvent) {
    switch event {
    case .stepStarted(let step, let section, let title):
      emit([style.bold("\(section) \(title) (\(step))")], step: step, starts: true)
    case .commandStarted(let step, let action, let command):
      if verbose {
        emit([style.dim("  $ \(command)") + style.dim("   [\(step)/\(action)]")], step: step)
      }
    case .actionFinished(let step, let action, let outcome, let detail):
      let label = "\(outcome.rawValue)".padding(toLength: 16, withPad: " ", startingAt: 0)
      let painted: String
      switch outcome {
      case .created, .recovered, .adopted, .confirmed, .updated, .deleted:
        painted = style.green(label)
      case .alreadyDone, .read, .kept, .ranLocally: painted = style.dim(label)
      case .skipped, .pendingManual: painted = style.yellow(label)
      case .failed: painted = style.red(label)
      }
      emit(
        ["  \(painted) \(step)/\(action)" + (detail.map { "  \($0)" } ?? "")], step: step,
        ends: "\(step)/\(action)")
    case .actionFailed(let step, let action, let message):
      emit(
        [
          "  " + style.red("failed".padding(toLength: 16, withPad: " ", startingAt: 0))
            + " \(step)/\(action)  "
            + (message.split(separator: "\n").first.map(String.init) ?? "")
        ], step: step, ends: "\(step)/\(action)")
    case .waiting(let step, let action, let state, let elapsed, let until):
      if style.live {
        waited(
          LiveWait(
            key: "\(step)/\(action)", step: step, state: state, until: until, elapsed: elapsed,
            reportedAt: Date()))
      } else {
        emit(
          ["  \(timestamp()) " + Self.waitText("\(step)/\(action)", state, elapsed, until)],
          step: step)
      }
    case .retrying(let step, let action, let reason, let attempt, let delay):
      emit(
        [
          "  " + style.yellow("retry".padding(toLength: 16, withPad: " ", startingAt: 0))
            + " \(step)/\(action)  \(reason), attempt \(attempt + 1) in \(String(format: "%.1f", delay))s"
        ], step: step)
    case .manual(let step, let action, let instructions):
      emit(
        [
          "  " + style.yellow("manual".padding(toLength: 16, withPad: " ", startingAt: 0))
            + " \(step)/\(action)"
        ]
          + instructions.split(separator: "\n", omittingEmptySubsequences: false).map {
            "      \($0)"
          }, step: step)
    case .progress(let step, _, let message):
      emit(
        message.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" },
        step: step)
    case .stepFinished(let step, let elapsed):
      emit(
        [style.dim("  \(step) finished in \(String(format: "%.1f", elapsed))s")], step: step,
        finishes: true)
    case .warning(let message):
      screen.withLock { screen in
        clearLiveLine(&screen)
        errors.write(style.yellow("warning: ") + message + "\n")
        drawLiveLine(&screen)
      }
    case .note(let message):
      emit([message], step: nil)
    }
  }

  /// Ends the run's output: prints the blocks still held, in the order their steps started, and
  /// clears the live line. Call it once the engine returned or threw.
  package func finish() {
    screen.withLock { screen in
      screen.ticker?.cancel()
      screen.ticker = nil
      screen.waits.removeAll()
      clearLiveLine(&screen)
      for step in screen.queue {
        for text in screen.held[step] ?? [] { output.write(text + "\n") }
      }
      screen.queue.removeAll()
      screen.held.removeAll()
      screen.ended.removeAll()
      screen.owner = nil
    }
  }

  /// `network/nat-gateway-available: pending (7s), until available`.
  static func waitText(_ key: String, _ state: String, _ elapsed: Double, _ until: [String])
    -> String
  {
    var text = "waiting \(key): \(state) (\(Int(elapsed))s)"
    if !until.isEmpty, !until.contains(state) {
      text += ", until \(until.joined(separator: " or "))"
    }
    return text
  }

  /// Prints `lines` of `step` (nil: of the run), or holds them while another step's block is on
  /// the terminal.
  /// - Parameters:
  ///   - starts: the first lines of the step (its header).
  ///   - ends: the wait of this `step/action` is over.
  ///   - finishes: the last lines of the step.
  private func emit(
    _ lines: [String], step: String?, starts: Bool = false, ends key: String? = nil,
    finishes: Bool = false
  ) {
    screen.withLock { screen in
      guard style.live, let step else {
        write(lines, &screen)
        return
      }
      if let key { screen.waits.removeAll { $0.key == key } }
      if finishes { screen.waits.removeAll { $0.step == step } }
      if starts {
        if screen.owner == nil {
          screen.owner = step
        } else if screen.owner != step {
          screen.queue.append(step)
          screen.held[step] = []
        }
      }
      if screen.owner != step, screen.held[step] != nil {
        screen.held[step]! += lines
        if finishes { screen.ended.insert(step) }
        if key != nil || finishes { drawLiveLine(&screen) }
        return
      }
      write(lines, &screen)
      guard finishes, screen.owner == step else { return }
      // The next step's block: all of it when it has ended, else what it has so far, and the
      // screen is its own from now on.
      screen.owner = nil
      while !screen.queue.isEmpty {
        let next = screen.queue.removeFirst()
        write(screen.held.removeValue(forKey: next) ?? [], &screen)
        if screen.ended.remove(next) == nil {
          screen.owner = next
          break
        }
      }
    }
  }

  /// A wait polled: shown on the live line, which is redrawn every second from now on.
  private func waited(_ wait: LiveWait) {
    screen.withLock { screen in
      if let index = screen.waits.firstIndex(where: { $0.key == wait.key }) {
        screen.waits[index] = wait
      } else {
        screen.waits.append(wait)
      }
      screen.frame += 1
      drawLiveLine(&screen)
      if screen.ticker == nil {
        let ticker = DispatchSource.makeTimerSource(
          queue: DispatchQueue(label: "runbook.console.live-line"))
        ticker.schedule(deadline: .now() + 1, repeating: 1)
        ticker.setEventHandler { [weak self] in self?.tick() }
        ticker.resume()
        screen.ticker = ticker
      }
    }
  }

  private func tick() {
    screen.withLock { screen in
      guard !screen.waits.isEmpty else { return }
      screen.frame += 1
      drawLiveLine(&screen)
    }
  }

  /// Writes whole lines above the live line.
  private func write(_ lines: [String], _ screen: inout Screen) {
    guard !lines.isEmpty else { return }
    clearLiveLine(&screen)
    output.write(lines.map { $0 + "\n" }.joined())
    drawLiveLine(&screen)
  }

  /// Draws the live line (every wait in progress), or clears it when there is none. Cut to the
  /// terminal's width: a line that wraps could not be cleared.
  private func drawLiveLine(_ screen: inout Screen) {
    guard style.live, !screen.waits.isEmpty else {
      clearLiveLine(&screen)
      return
    }
    let now = Date()
    let parts = screen.waits.map { wait in
      Self.waitText(
        wait.key, wait.state, wait.elapsed + now.timeIntervalSince(wait.reportedAt), wait.until)
    }
    var line = "  \(Self.spinner[screen.frame % 4]) " + parts.joined(separator: " · ")
    let width = max(20, terminalColumns() - 1)
    if line.count > width { line = String(line.prefix(width - 3)) + "..." }
    output.write(clearSequence(screen.shown) + line)
    screen.shown = line.count
  }

  /// Returns to the start of the live line and blanks it: an escape sequence with colour, spaces
  /// without (NO_COLOR output carries no escape codes at all).
  private func clearSequence(_ width: Int) -> String {
    if style.color { return "\r\u{1B}[2K" }
    return width == 0 ? "\r" : "\r" + String(repeating: " ", count: width) + "\r"
  }

  private func clearLiveLine(_ screen: inout Screen) {
    guard screen.shown > 0 else { return }
    output.write(clearSequence(screen.shown))
    screen.shown = 0
  }

  /// The width of the terminal the output is (80 when it cannot be told).
  private func terminalColumns() -> Int {
    if let file = output as? FileOutput {
      var size = winsize()
      if ioctl(file.descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 {
        return Int(size.ws_col)
      }
    }
    return 80
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
      // Nil: the end of the input (Ctrl-D), or Ctrl-C (``TerminalInput/interrupt()``).
      guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else {
        output.write("\n")
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
        output.write("\n")
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
