import Foundation
import XCTest

/// `scripts/check-layers.py` (run by `make test` as `make check-layers`): the package as it is
/// passes, and a wrong arrow in Package.swift or a stray import fails it.
final class LayerTests: XCTestCase {
  private let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// Runs the script on the sources under `root` (this package's by default), reading `manifest`
  /// instead of the package's Package.swift when given.
  private func check(manifest: String? = nil, root: URL? = nil) throws -> (Int32, String) {
    var arguments = [
      self.root.appendingPathComponent("scripts/check-layers.py").path, (root ?? self.root).path,
    ]
    let file = FileManager.default.temporaryDirectory
      .appendingPathComponent("layers-\(UUID().uuidString).swift")
    defer { try? FileManager.default.removeItem(at: file) }
    if let manifest {
      try manifest.write(to: file, atomically: true, encoding: .utf8)
      arguments.append(file.path)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
  }

  private func manifest() throws -> String {
    try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
  }

  /// The manifest with `dependency` added to the dependencies of the target called `name`.
  private func adding(_ dependency: String, to name: String) throws -> String {
    let text = try manifest()
    let target = try XCTUnwrap(text.range(of: "name: \"\(name)\", dependencies: ["))
    return text.replacingCharacters(
      in: target, with: "name: \"\(name)\", dependencies: [\"\(dependency)\", ")
  }

  func testThePackageAsItIsPasses() throws {
    let (status, output) = try check()
    XCTAssertEqual(status, 0, output)
    XCTAssertEqual(try check(manifest: try manifest()).0, 0)
  }

  func testTheEngineDependingOnTheAWSOrRunbookLayerFails() throws {
    for layer in ["RunbookAWS", "UniSyncRunbook"] {
      let (status, output) = try check(manifest: try adding(layer, to: "RunbookEngine"))
      XCTAssertEqual(status, 1, output)
      XCTAssertTrue(output.contains("RunbookEngine depends on \(layer)"), output)
    }
    // Through another target: the state layer depending on the runbook.
    let (status, output) = try check(manifest: try adding("UniSyncRunbook", to: "RunbookState"))
    XCTAssertEqual(status, 1, output)
    XCTAssertTrue(output.contains("RunbookEngine reaches UniSyncRunbook"), output)
  }

  func testAnImportTheTargetDoesNotDeclareFails() throws {
    // The engine's folder with one file importing the AWS layer.
    let copy = FileManager.default.temporaryDirectory
      .appendingPathComponent("layers-\(UUID().uuidString)")
    let engine = copy.appendingPathComponent("Sources/RunbookEngine")
    try FileManager.default.createDirectory(at: engine, withIntermediateDirectories: true)
    try "import Foundation\nimport RunbookAWS\n".write(
      to: engine.appendingPathComponent("Stray.swift"), atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: copy) }
    let (status, output) = try check(manifest: try manifest(), root: copy)
    XCTAssertEqual(status, 1, output)
    XCTAssertTrue(
      output.contains("Sources/RunbookEngine/Stray.swift:2: imports RunbookAWS"), output)
  }
}
