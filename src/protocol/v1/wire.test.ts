import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { DriverCapabilities, RuntimeConfig } from "../../core/driver.js";
import {
  DriverUnavailableError,
  InvalidStateError,
  NotFoundError,
  NotSupportedError,
} from "../../core/errors.js";
import {
  capabilitiesFromWire,
  capabilitiesToWire,
  configFromWire,
  configToWire,
  driverService,
  errorFromStatus,
  errorToStatus,
  stateFromWire,
  stateToWire,
} from "./wire.js";

const site = { driver: "acme", method: "Start" };
const asServiceError = (s: grpc.StatusObject): grpc.ServiceError =>
  Object.assign(new Error(s.details), s) as grpc.ServiceError;

describe("protocol v1 wire", () => {
  it("loads the Driver service with every contract call", () => {
    assert.deepEqual(Object.keys(driverService()).sort(), [
      "Attach",
      "Capabilities",
      "CleanupStaleResources",
      "CreateInstance",
      "Destroy",
      "Exec",
      "Handshake",
      "Health",
      "Logs",
      "Probe",
      "Start",
      "Stop",
    ]);
    assert.equal(driverService().Exec!.responseStream, true);
  });

  it("capabilities and config survive the round trip through protobuf", () => {
    const caps: DriverCapabilities = {
      isolation: "namespace",
      networkPolicies: ["none", "host"],
      limits: { memory: true, pids: false, cpu: true },
      rootfsEnvironments: true,
      persistentInstances: true,
      posixShell: false,
    };
    const config: RuntimeConfig = {
      workspaceDir: "/w",
      environment: { name: "host", rootfsPath: null },
      hostname: "h",
      env: { A: "1" },
      vcpuCount: 2,
      memoryMiB: 256,
      pidsMax: 64,
      network: "none",
      healthTimeoutMs: 1000,
    };
    const m = driverService().CreateInstance!;
    const back = m.requestDeserialize(m.requestSerialize({ instanceId: "x", config: configToWire(config) }));
    assert.deepEqual(configFromWire(back.config), config);
    const rootfs = { ...config, environment: { name: "debian", rootfsPath: "/r" } };
    assert.deepEqual(
      configFromWire(m.requestDeserialize(m.requestSerialize({ config: configToWire(rootfs) })).config),
      rootfs,
    );
    const c = driverService().Capabilities!;
    assert.deepEqual(
      capabilitiesFromWire(c.responseDeserialize(c.responseSerialize(capabilitiesToWire(caps)))),
      caps,
    );
    assert.deepEqual(stateFromWire(stateToWire({ init: { pid: 1 } })), { init: { pid: 1 } });
    assert.deepEqual(stateFromWire(Buffer.alloc(0)), {});
  });

  it("a WarrenError crosses as a status and comes back as the same class", () => {
    const status = errorToStatus(
      new InvalidStateError("not running", { hint: "start it", details: { a: 1 } }),
    );
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
    const e = errorFromStatus(asServiceError(status), site);
    assert.ok(e instanceof InvalidStateError);
    assert.deepEqual([e.message, e.hint, e.details], ["not running", "start it", { a: 1 }]);
    const unknown = errorFromStatus(
      asServiceError(errorToStatus(new NotFoundError("x", { details: { instanceUnknown: true } }))),
      site,
    );
    assert.equal(unknown.details?.instanceUnknown, true);
  });

  it("a bare status becomes NotSupported, DriverUnavailable or Internal", () => {
    const bare = (code: grpc.status) => asServiceError({ code, details: "d", metadata: new grpc.Metadata() });
    assert.ok(errorFromStatus(bare(grpc.status.UNIMPLEMENTED), site) instanceof NotSupportedError);
    assert.ok(errorFromStatus(bare(grpc.status.UNAVAILABLE), site) instanceof DriverUnavailableError);
    const lost = errorFromStatus(bare(grpc.status.INTERNAL), { ...site, lost: "killed by SIGKILL" });
    assert.ok(lost instanceof DriverUnavailableError && /SIGKILL/.test(lost.message));
    assert.equal(errorFromStatus(bare(grpc.status.INTERNAL), site).code, "INTERNAL");
  });
});
