// runbook-health-probe: one HTTP GET of a health URL with Foundation's URLSession.
//
//   runbook-health-probe [--timeout SECONDS] URL
//
// Prints one line of JSON on standard output and exits:
//   0  an HTTP answer came, whatever its status:
//        {"error":null,"excerpt":"{\"status\":\"UP\"}","milliseconds":12,"status":200}
//   1  no HTTP answer (refused, timed out, not resolvable); `error` says why in words:
//        {"error":"connection refused","excerpt":"","milliseconds":3,"status":null}
//   2  a usage error: nothing on standard output, the reason on standard error.
// `excerpt` is the start of the body (at most 200 characters, line breaks turned into spaces).
//
// `runbook run verify` runs it and judges the answer (HTTP 200 and "status":"UP"); it lives in its
// own executable so that only this program links FoundationNetworking (and libcurl with it), not
// every start of `runbook`.

import Dispatch
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

enum ExitCode {
  static let answered: Int32 = 0
  static let noAnswer: Int32 = 1
  static let usage: Int32 = 2
}

let usage = "usage: runbook-health-probe [--timeout SECONDS] URL\n"

/// What one GET produced: the line printed.
struct Report: Encodable {
  var status: Int?
  var milliseconds: Int
  var excerpt: String
  var error: String?

  enum CodingKeys: String, CodingKey { case status, milliseconds, excerpt, error }

  // Absent values are written as null: every line has the same four keys.
  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(status, forKey: .status)
    try container.encode(milliseconds, forKey: .milliseconds)
    try container.encode(excerpt, forKey: .excerpt)
    try container.encode(error, forKey: .error)
  }

  var line: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(self)) ?? Data(#"{"error":"cannot encode the answer"}"#.utf8)
    return String(decoding: data, as: UTF8.self) + "\n"
  }
}

/// What a connection error means, in words.
func explain(_ error: any Error) -> String {
  switch (error as? URLError)?.code {
  case .timedOut?: "timed out"
  case .cannotConnectToHost?: "connection refused"
  case .cannotFindHost?, .dnsLookupFailed?: "the host name does not resolve"
  case .networkConnectionLost?: "the connection was closed before an answer"
  case .notConnectedToInternet?: "no network"
  default: error.localizedDescription
  }
}

/// Writes the line and exits; the first caller wins (the answer, or the watchdog below).
let finished = Mutex(false)
func finish(_ report: Report) -> Never {
  finished.withLock { done in
    if !done {
      done = true
      FileHandle.standardOutput.write(Data(report.line.utf8))
      exit(report.status == nil ? ExitCode.noAnswer : ExitCode.answered)
    }
  }
  // Another thread is writing its line and exiting.
  while true { pause() }
}

func usageError(_ message: String) -> Never {
  FileHandle.standardError.write(Data("runbook-health-probe: \(message)\n\(usage)".utf8))
  exit(ExitCode.usage)
}

// MARK: - The command line

var timeout = 5.0
var address: String?
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
  let argument = arguments.removeFirst()
  switch argument {
  case "-h", "--help":
    FileHandle.standardOutput.write(Data(usage.utf8))
    exit(ExitCode.answered)
  case "--timeout":
    guard let text = arguments.first else { usageError("--timeout needs a number of seconds") }
    arguments.removeFirst()
    guard let value = Double(text), value.isFinite, value > 0, value <= 3600 else {
      usageError("--timeout: '\(text)' is not a number of seconds from 0 to 3600")
    }
    timeout = value
  default:
    guard address == nil, !argument.hasPrefix("-") else {
      usageError(address == nil ? "unknown option '\(argument)'" : "one URL only")
    }
    address = argument
  }
}
guard let address else { usageError("no URL") }
guard let url = URL(string: address), let scheme = url.scheme?.lowercased(),
  scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
else {
  usageError("'\(address)' is not an http(s) URL")
}

// MARK: - The request

/// GETs the URL once and finishes with what came back.
func probe(_ url: URL, timeout: Double) -> Never {
  let started = Date()
  let elapsed: @Sendable () -> Int = { Int(Date().timeIntervalSince(started) * 1000) }

  // URLSession's own timeouts end the request; should they not, the line is still printed a
  // second after the timeout.
  DispatchQueue.global().asyncAfter(deadline: .now() + timeout + 1) {
    finish(Report(status: nil, milliseconds: elapsed(), excerpt: "", error: "timed out"))
  }

  var request = URLRequest(
    url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
  request.httpMethod = "GET"
  request.setValue("runbook-verify", forHTTPHeaderField: "User-Agent")
  let configuration = URLSessionConfiguration.ephemeral
  // The URL is reached directly, never through a proxy named in the environment.
  configuration.connectionProxyDictionary = [:]
  configuration.timeoutIntervalForRequest = timeout
  configuration.timeoutIntervalForResource = timeout
  let session = URLSession(configuration: configuration)
  session.dataTask(with: request) { data, response, error in
    if let error {
      finish(Report(status: nil, milliseconds: elapsed(), excerpt: "", error: explain(error)))
    }
    let status = (response as? HTTPURLResponse)?.statusCode
    let body = String(decoding: data ?? Data(), as: UTF8.self)
    let oneLine = body.split(whereSeparator: \.isNewline).joined(separator: " ")
    finish(
      Report(
        status: status, milliseconds: elapsed(), excerpt: String(oneLine.prefix(200)),
        error: status == nil ? "the answer is not HTTP" : nil))
  }.resume()
  dispatchMain()
}

probe(url, timeout: timeout)
