import Testing
@testable import BaoWrapCore

@Test func exitStatus_signalDeath() { #expect(ExitStatus.signaled(15).code == 143) }
