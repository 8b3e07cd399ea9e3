import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Rules every step of the catalogue must keep, for both shipped runbooks: a malformed step is
/// caught here, before any run.
final class CatalogueTests: XCTestCase {
  func deployments() throws -> [(String, Deployment)] {
    try ["unisync-ecs.json", "local.json"].map {
      ($0, try Deployment.load(from: packageRoot.appendingPathComponent("runbooks/\($0)").path))
    }
  }

  func testStepsAreInGuideOrderWithUniqueIds() {
    let ids = Catalogue.steps.map(\.id)
    XCTAssertEqual(Set(ids).count, ids.count, "\(ids)")
    let positions = ids.map { Catalogue.guideOrder.firstIndex(of: $0) }
    XCTAssertFalse(positions.contains(nil), "\(ids) not all in \(Catalogue.guideOrder)")
    XCTAssertEqual(positions, positions.sorted { ($0 ?? 0) < ($1 ?? 0) }, "not in guide order")
  }

  func testActionNamesAreUniqueAndEveryAfterNamesAnAction() throws {
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        let names = step.actions(for: deployment).map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "\(file) \(step.id): duplicate action names")
        for action in step.actions(for: deployment) {
          for name in action.after {
            XCTAssertTrue(
              names.contains(name), "\(file) \(step.id)/\(action.name): after '\(name)'")
          }
        }
      }
    }
  }

  /// `run` starts every step at once and each action as soon as what it uses exists: the DB
  /// instance waits for the VPC, the private subnets and its security group, never for the NAT
  /// gateway; a service waits for the whole network (its route to the NAT gateway) and the images.
  func testActionsWaitOnlyForWhatTheyUse() throws {
    let fixture = try EngineFixture(test: self)
    let steps = Catalogue.steps.filter(\.runsByDefault)
    let engine = fixture.engine(steps)
    XCTAssertEqual(engine.stepDependencies(steps), steps.map { _ in [] })
    let gate = engine.exportGate(steps, checkpoint: Checkpoint(deployment: "d", region: "r"))
    let deployment = fixture.deployment
    func awaited(_ step: String, _ action: String) throws -> [String] {
      let index = try XCTUnwrap(steps.firstIndex { $0.id == step })
      let found = try XCTUnwrap(steps[index].actions(for: deployment).first { $0.name == action })
      return gate.awaited(found, by: index).sorted()
    }
    let privateSubnets = deployment.network.subnets.filter { !$0.isPublic }.map(\.export)
    XCTAssertEqual(try awaited("rds", "subnet-group"), (["VPC_ID"] + privateSubnets).sorted())
    let instance = try awaited("rds", "instance")
    XCTAssertFalse(instance.isEmpty)
    for name in instance {
      XCTAssertFalse(name.hasPrefix("step "), "the DB instance waits for a whole step: \(name)")
      XCTAssertFalse(name.contains("NAT"), "the DB instance waits for the NAT gateway: \(name)")
    }
    XCTAssertTrue(instance.contains("RDS_SG"), "\(instance)")
    for service in deployment.services {
      let waits = try awaited("ecs", "service-\(service.name)")
      XCTAssertTrue(waits.contains("step network") && waits.contains("step ecr"), "\(waits)")
    }
    let operations = Catalogue.steps.filter { !$0.runsByDefault }
    let withOperations = steps + operations
    let all = fixture.engine(withOperations).stepDependencies(withOperations)
    for index in steps.count..<withOperations.count {
      XCTAssertEqual(
        all[index], Set(0..<index), "\(withOperations[index].id) waits for every step before it")
    }
  }

  /// A settlement names an action of its own step, or of a step that comes before it.
  func testEverySettlementNamesAnEarlierActionOfItsStep() throws {
    let order = Catalogue.steps.map(\.id)
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        for action in step.actions(for: deployment) {
          guard let settlement = action.settledBy else { continue }
          let owner = settlement.step ?? step.id
          let names = Catalogue.steps.first { $0.id == owner }?.actions(for: deployment).map(\.name)
          XCTAssertTrue(
            names?.contains(settlement.action) == true,
            "\(file) \(step.id)/\(action.name): settled by '\(owner)/\(settlement.action)'")
          if let other = settlement.step {
            XCTAssertLessThan(
              order.firstIndex(of: other) ?? .max, order.firstIndex(of: step.id) ?? -1,
              "\(file) \(step.id)/\(action.name): settled by a later step, \(other)")
          }
        }
      }
    }
  }

  func testActionsOfEveryStepFormNoCycle() throws {
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        let dependencies = StepExecution.dependencies(of: step.actions(for: deployment))
        var done = Set<String>()
        var progress = true
        while progress {
          let ready = dependencies.filter { !done.contains($0.key) && $0.value.isSubset(of: done) }
          progress = !ready.isEmpty
          done.formUnion(ready.keys)
        }
        XCTAssertEqual(
          done.count, dependencies.count,
          "\(file) \(step.id): \(Set(dependencies.keys).subtracting(done).sorted()) wait for each other"
        )
      }
    }
  }

  func testEveryExportHasOneProducerAndAnAnchoredPattern() throws {
    for (file, deployment) in try deployments() {
      var producers: [String: String] = [:]
      for step in Catalogue.steps {
        for action in step.actions(for: deployment) {
          guard let capture = action.capture else { continue }
          XCTAssertTrue(
            capture.pattern.hasPrefix("^") && capture.pattern.hasSuffix("$"),
            "\(file) \(step.id)/\(action.name): pattern \(capture.pattern) must match the whole output"
          )
          guard let export = capture.export else { continue }
          XCTAssertFalse(ContextValue.names.contains(export), "\(export) is a context value")
          if let other = producers[export] {
            XCTFail("\(file) \(export) is produced by \(other) and \(step.id)/\(action.name)")
          }
          producers[export] = "\(step.id)/\(action.name)"
        }
      }
    }
  }

  func testEveryRequiredExportComesFromAnEarlierStep() throws {
    for (file, deployment) in try deployments() {
      var available = Set<String>()
      for step in Catalogue.steps {
        for export in step.requiredExports(for: deployment) {
          XCTAssertTrue(
            available.contains(export),
            "\(file) \(step.id) needs \(export) before any step makes it")
        }
        available.formUnion(step.producedExports(for: deployment))
      }
    }
  }

  func testEverySecretUsedIsDeclared() throws {
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        let declared = Set(step.secretInputs(for: deployment).map(\.name))
        for action in step.actions(for: deployment) {
          let commands = [action.command, action.lookup?.command, action.precheck?.command]
          for name in commands.compactMap({ $0 }).flatMap(\.secretReferences) {
            XCTAssertTrue(
              declared.contains(name),
              "\(file) \(step.id)/\(action.name) uses undeclared secret \(name)")
          }
        }
      }
    }
  }

  func testEveryWriteCanBeResumedSafely() throws {
    // An interrupted write is reconciled by a lookup, is safe to repeat, or says which AWS
    // errors mean "done already"; never blind repetition.
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        XCTAssertEqual(
          StepExecution.blindWrites(step.actions(for: deployment)), [],
          "\(file) \(step.id): writes without lookup, precheck, idempotence or done-already errors")
      }
    }
  }

  func testEveryAwsCommandIsAnOperationWithoutGlobalOptions() throws {
    // The engine adds --region, --endpoint-url and --profile; a step adding them would fight it.
    for (file, deployment) in try deployments() {
      for step in Catalogue.steps {
        for action in step.actions(for: deployment) {
          let commands = [action.command, action.lookup?.command, action.adoptLookup?.command]
          for command in commands.compactMap({ $0 }) where command.tool == "aws" {
            let words = command.arguments.map(\.description)
            XCTAssertGreaterThanOrEqual(words.count, 2, "\(file) \(step.id)/\(action.name)")
            for option in ["--region", "--endpoint-url", "--profile"] {
              XCTAssertFalse(
                words.contains(option), "\(file) \(step.id)/\(action.name) sets \(option) itself")
            }
          }
        }
      }
    }
  }
}
