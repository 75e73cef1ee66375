//! The device context: driver and NVRTC discovery that never panics, one CUDA context and stream per [`Gpu`], and
//! kernels compiled by NVRTC at first use and cached.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::{CompileOptions, Ptx};
use losskit_tensor::{Error, Result};

use crate::kernels;

/// Builds an [`Error::Device`] from a context and a cudarc error.
pub(crate) fn device_error(what: &str, err: impl std::fmt::Debug) -> Error {
    Error::Device { what: format!("{what}: {err:?}") }
}

/// Runs `f`, turning a panic inside cudarc (a missing library or symbol, which it reports by panicking) into
/// [`Error::Device`], so no panic escapes this crate.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::Device { what: format!("{what}: the CUDA library panicked: {msg}") })
        }
    }
}

/// Whether the CUDA driver library (`libcuda.so`) can be loaded. Never panics.
pub fn driver_available() -> bool {
    // SAFETY: is_culib_present only tries to dlopen the candidate library names and drops what it opened.
    catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() }).unwrap_or(false)
}

/// Whether the NVRTC library (`libnvrtc.so` / `libnvrtc.so.13`, found through the usual dynamic-loader search path,
/// e.g. `LD_LIBRARY_PATH`) can be loaded. Never panics.
pub fn nvrtc_available() -> bool {
    // SAFETY: as for driver_available.
    catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

fn nvrtc_missing() -> Error {
    Error::Device {
        what: "NVRTC library not found (libnvrtc.so.13): put the CUDA toolkit's lib64 folder on LD_LIBRARY_PATH".into(),
    }
}

fn c_text(bytes: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().take_while(|&&b| b != 0).map(|&b| b as u8).collect();
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// Compiles CUDA C source to PTX with NVRTC. `arch` is a virtual architecture such as `compute_90`; `None` leaves
/// NVRTC's default. Needs no GPU, only libnvrtc.
///
/// # Errors
/// [`Error::Device`] when NVRTC cannot be loaded or the source does not compile (the message holds NVRTC's log).
pub fn compile_ptx(name: &str, source: &str, arch: Option<&str>) -> Result<Ptx> {
    if !nvrtc_available() {
        return Err(nvrtc_missing());
    }
    guard("nvrtc", || {
        let mut options = vec!["--std=c++17".to_string()];
        if let Some(arch) = arch {
            options.push(format!("--gpu-architecture={arch}"));
        }
        let opts = CompileOptions { options, name: Some(format!("{name}.cu")), ..Default::default() };
        cudarc::nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                Error::Device { what: format!("kernel {name} does not compile: {}", log.to_string_lossy().trim()) }
            }
            other => device_error(&format!("compiling kernel {name}"), other),
        })
    })
}

/// Compiles CUDA C source with NVRTC straight to a CUBIN (machine code) for a real architecture such as `sm_90`.
///
/// Machine code loads on any driver of the same CUDA major version, whereas PTX from an NVRTC newer than the driver
/// is rejected, so [`Gpu`] loads kernels this way first. Needs no GPU, only libnvrtc.
///
/// # Errors
/// [`Error::Device`] when NVRTC cannot be loaded, does not know `arch`, or the source does not compile.
pub fn compile_cubin(name: &str, source: &str, arch: &str) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    if !nvrtc_available() {
        return Err(nvrtc_missing());
    }
    let nul = |_| Error::Device { what: format!("kernel {name}: source or name holds a NUL byte") };
    let src = std::ffi::CString::new(source).map_err(nul)?;
    let file = std::ffi::CString::new(format!("{name}.cu")).map_err(nul)?;
    guard("nvrtc", || {
        let prog = result::create_program(&src, Some(&file)).map_err(|e| device_error("nvrtcCreateProgram", e))?;
        let options = ["--std=c++17".to_string(), format!("--gpu-architecture={arch}")];
        // SAFETY: `prog` comes from create_program above, `src` and `file` outlive it, and it is destroyed exactly
        // once, after its last use, below.
        let compiled = unsafe { result::compile_program(prog, &options) };
        let cubin = match compiled {
            Err(e) => {
                // SAFETY: as above.
                let log = unsafe { result::get_program_log(prog) }.map(|l| c_text(&l)).unwrap_or_default();
                Err(Error::Device { what: format!("kernel {name} does not compile for {arch} ({e:?}): {log}") })
            }
            Ok(()) => {
                let mut size = 0_usize;
                // SAFETY: as above; `buf` holds the `size` bytes NVRTC reports.
                unsafe { sys::nvrtcGetCUBINSize(prog, &mut size).result() }
                    .map_err(|e| device_error("nvrtcGetCUBINSize", e))
                    .and_then(|()| {
                        let mut buf = vec![0_u8; size];
                        unsafe { sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr().cast()).result() }
                            .map_err(|e| device_error("nvrtcGetCUBIN", e))
                            .map(|()| buf)
                    })
            }
        };
        // SAFETY: as above; nothing uses `prog` after this.
        let _ = unsafe { result::destroy_program(prog) };
        cubin
    })
}

/// One CUDA device: a context, the stream every launch of this `Gpu` goes to, and the kernels compiled so far.
///
/// Launches from one `Gpu` run in order on its stream; the host-side API (`cross_entropy`, ...) waits for its results
/// before returning.
#[derive(Debug)]
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    capability: (i32, i32),
    functions: Mutex<HashMap<String, CudaFunction>>,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    pairwise: crate::pairwise::PairCache,
}

impl Gpu {
    /// Opens device `ordinal` (0 is the first GPU).
    ///
    /// Checks, in this order and without panicking, that the driver library loads, that the driver reports at least
    /// `ordinal + 1` devices, and that a context can be created.
    ///
    /// # Errors
    /// [`Error::Device`] naming the first check that failed (no driver, no device, bad ordinal, context failure).
    pub fn new(ordinal: usize) -> Result<Gpu> {
        let count = Self::device_count()?;
        if ordinal >= count {
            return Err(Error::Device {
                what: format!("no CUDA device with ordinal {ordinal}: the driver reports {count} device(s)"),
            });
        }
        guard("opening the CUDA device", || {
            let ctx = CudaContext::new(ordinal).map_err(|e| device_error("creating a CUDA context", e))?;
            let (major, minor) =
                ctx.compute_capability().map_err(|e| device_error("reading the compute capability", e))?;
            let stream = ctx.default_stream();
            Ok(Gpu {
                ctx,
                stream,
                capability: (major, minor),
                functions: Mutex::new(HashMap::new()),
                modules: Mutex::new(HashMap::new()),
                pairwise: crate::pairwise::PairCache::default(),
            })
        })
    }

    /// Number of CUDA devices the driver reports.
    ///
    /// # Errors
    /// [`Error::Device`] when the driver library is missing or cannot initialise (for example no device at all).
    pub fn device_count() -> Result<usize> {
        // cudarc panics on its first call when libcuda cannot be loaded, so look for the library first.
        if !driver_available() {
            return Err(Error::Device { what: "no CUDA driver: libcuda.so cannot be loaded".into() });
        }
        guard("counting CUDA devices", || {
            let n = CudaContext::device_count().map_err(|e| device_error("counting CUDA devices", e))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    /// The device ordinal this context was opened on.
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    /// The device name (`NVIDIA H100 80GB HBM3`, ...).
    ///
    /// # Errors
    /// [`Error::Device`] when the driver call fails.
    pub fn name(&self) -> Result<String> {
        guard("reading the device name", || self.ctx.name().map_err(|e| device_error("reading the device name", e)))
    }

    /// The compute capability (major, minor): (9, 0) on an H100. Kernels are compiled for `sm_{major}{minor}`.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.capability
    }

    /// Waits until every launch of this `Gpu` has finished.
    ///
    /// # Errors
    /// [`Error::Device`] when a launched kernel failed.
    pub fn synchronize(&self) -> Result<()> {
        guard("synchronising", || self.stream.synchronize().map_err(|e| device_error("synchronising the stream", e)))
    }

    pub(crate) fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The cuBLAS handle and pairwise workspace kept between calls (src/pairwise.rs).
    pub(crate) fn pair_cache(&self) -> &crate::pairwise::PairCache {
        &self.pairwise
    }

    /// Kernel `function` of kernel file `file` (see [`kernels::kernel_sources`]), compiling and loading the file on
    /// first use.
    pub(crate) fn function(&self, file: &'static str, function: &str) -> Result<CudaFunction> {
        let key = format!("{file}/{function}");
        if let Some(f) = self.functions.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(f.clone());
        }
        let module = self.module(file)?;
        let f = guard("loading a kernel", || {
            module.load_function(function).map_err(|e| device_error(&format!("loading kernel {function}"), e))
        })?;
        self.functions.lock().map_err(|_| poisoned())?.insert(key, f.clone());
        Ok(f)
    }

    /// Loads kernel file `file`: NVRTC machine code for this GPU (`sm_XY`), or PTX for `compute_XY` when that fails
    /// (an NVRTC that does not know the architecture yet).
    fn module(&self, file: &'static str) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().map_err(|_| poisoned())?;
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let source =
            kernels::source(file).ok_or_else(|| Error::Device { what: format!("no kernel file named {file}") })?;
        let (major, minor) = self.capability;
        let load = |image: Ptx, what: &str| {
            guard("loading a module", || {
                self.ctx.load_module(image).map_err(|e| device_error(&format!("loading the {what} of {file}"), e))
            })
        };
        let module = match compile_cubin(file, source, &format!("sm_{major}{minor}"))
            .and_then(|cubin| load(Ptx::from_binary(cubin), "CUBIN"))
        {
            Ok(m) => m,
            Err(cubin_err) => {
                let ptx = compile_ptx(file, source, Some(&format!("compute_{major}{minor}")))?;
                load(ptx, "PTX (a driver older than NVRTC rejects newer PTX)")
                    .map_err(|e| Error::Device { what: format!("{e}; before that, as machine code: {cubin_err}") })?
            }
        };
        modules.insert(file, module.clone());
        Ok(module)
    }
}

fn poisoned() -> Error {
    Error::Device { what: "kernel cache lock poisoned by an earlier panic".into() }
}
