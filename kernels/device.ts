/**
 * WebGPU adapter and device: asks for the limits training needs, reports what the adapter is,
 * and fails with a message that names any limit that is too low.
 * @module
 */

/** What the adapter is, for logs and benchmark reports. */
export interface AdapterReport {
  /** Adapter vendor, as WebGPU reports it (may be empty). */
  vendor: string;
  /** Adapter architecture (may be empty). */
  architecture: string;
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** True for software adapters such as Mesa llvmpipe / lavapipe. */
  isFallback: boolean;
  /** WebGPU features the adapter offers, sorted. */
  features: string[];
  /** The adapter's limits that the engine relies on, by WebGPU name. */
  limits: Record<string, number>;
}

/** Limits the engine asks for; each is raised to what the adapter offers when `preferMax` is set. */
export interface GpuLimitRequest {
  /** Largest single storage binding, bytes. */
  maxStorageBufferBindingSize?: number;
  /** Largest buffer, bytes. */
  maxBufferSize?: number;
  /** Workgroup shared memory, bytes. */
  maxComputeWorkgroupStorageSize?: number;
  /** Invocations per workgroup. */
  maxComputeInvocationsPerWorkgroup?: number;
  /** Storage buffers bound in one shader stage. */
  maxStorageBuffersPerShaderStage?: number;
}

/** Minimum limits every kernel in `kernels/` relies on. */
export const REQUIRED_LIMITS: Required<GpuLimitRequest> = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 128 * 1024 * 1024,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBuffersPerShaderStage: 8,
};

const LIMIT_NAMES = Object.keys(REQUIRED_LIMITS) as (keyof GpuLimitRequest)[];

/** Options for {@linkcode requestDevice}. */
export interface RequestDeviceOptions {
  /** Limits needed beyond {@linkcode REQUIRED_LIMITS}. */
  limits?: GpuLimitRequest;
  /** "high-performance" by default. */
  powerPreference?: GPUPowerPreference;
  /** Ask for shader-f16 when the adapter has it. Default true. */
  f16?: boolean;
}

/** An adapter and device ready for the engine. */
export interface DeviceHandle {
  adapter: GPUAdapter;
  device: GPUDevice;
  report: AdapterReport;
}

/** Describes an adapter: vendor, description, fallback or not, features and the limits we use. */
export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  // deno-lint-ignore no-explicit-any
  const info: any = adapter.info ?? {};
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) limits[name] = adapter.limits[name];
  limits.maxComputeWorkgroupSizeX = adapter.limits.maxComputeWorkgroupSizeX;
  limits.maxComputeWorkgroupsPerDimension = adapter.limits.maxComputeWorkgroupsPerDimension;
  const description = String(info.description ?? "");
  return {
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    description,
    isFallback: Boolean(info.isFallbackAdapter) ||
      /llvmpipe|lavapipe|swiftshader|software/i.test(description),
    features: [...adapter.features].sort(),
    limits,
  };
}

/**
 * Requests an adapter and a device with the limits training needs.
 *
 * @throws {Error} when WebGPU or an adapter is missing, or when a limit is too low (the message names
 * the limit, the value needed and the value offered).
 */
export async function requestDevice(options: RequestDeviceOptions = {}): Promise<DeviceHandle> {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new Error(
      "WebGPU is not available in this runtime: run with Deno 2 (navigator.gpu) on a machine with a Vulkan, Metal, DX12 or GL driver (Mesa's llvmpipe works for tests)",
    );
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) {
    throw new Error(
      "No WebGPU adapter found: install a GPU driver, or Mesa's Vulkan drivers for a software adapter (apt-get install mesa-vulkan-drivers libvulkan1)",
    );
  }
  const wanted: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const need = Math.max(REQUIRED_LIMITS[name], options.limits?.[name] ?? 0);
    const offered = adapter.limits[name];
    if (offered < need) {
      throw new RangeError(
        `WebGPU adapter limit "${name}" is ${offered}, but ${need} is needed: use a smaller batch size or sequence length, or another adapter`,
      );
    }
    // Ask for everything the adapter offers: big buffers cost nothing until allocated.
    wanted[name] = offered;
  }
  const features: GPUFeatureName[] = [];
  if (options.f16 !== false && adapter.features.has("shader-f16")) features.push("shader-f16");
  if (adapter.features.has("timestamp-query")) features.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits: wanted, requiredFeatures: features });
  return { adapter, device, report: describeAdapter(adapter) };
}
