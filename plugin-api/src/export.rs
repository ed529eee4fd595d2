//! [`export_plugins!`]: the one macro call that makes a library a ceilo plugin library.

/// Exports a library's plugins through ceilo's stable ABI.
///
/// Call it once per library (a `cdylib` crate), listing the types that implement each
/// kind's trait. Kinds: `pollers`, `notification_handlers`, `transformers`,
/// `publishers`, `trait_plugins`; list only the kinds you have, in any order. Each plugin's version is
/// the library crate's version.
///
/// ```
/// use ceilo_plugin_api::*;
///
/// pub struct Constant;
/// impl Plugin for Constant {
///     const NAME: &'static str = "constant";
///     const DESCRIPTION: &'static str = "always 42";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(Constant) }
/// }
/// impl Poller for Constant {
///     fn meters(&self) -> Vec<String> { vec!["answer".into()] }
///     fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
///         Ok(vec![Sample::new("answer", SampleType::Gauge, "", 42.0, "universe")].into())
///     }
/// }
///
/// pub struct Drop0;
/// impl Plugin for Drop0 {
///     const NAME: &'static str = "drop_zero";
///     const DESCRIPTION: &'static str = "drops samples whose volume is 0";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(Drop0) }
/// }
/// impl Transformer for Drop0 {
///     fn handle(&mut self, s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
///         if s.volume() != 0.0 { out.push(s) }
///         Ok(())
///     }
/// }
///
/// export_plugins! {
///     pollers: [Constant],
///     transformers: [Drop0],
/// }
/// ```
///
/// Every entry point the macro writes catches panics: a panicking plugin returns an
/// error of kind [`ErrorKind::PANIC`](crate::ErrorKind::PANIC) to the host, which
/// keeps running.
#[macro_export]
macro_rules! export_plugins {
    ($($kind:ident : [$($ty:ty),* $(,)?]),+ $(,)?) => {
        const _: () = {
            use $crate::__private::abi_stable as __sabi;
            use $crate::abi::v1_3 as __abi;

            fn __ceilo_fill(__list: &mut __abi::glue::ListBuilder<'_>) {
                $($( __list.$kind::<$ty>(env!("CARGO_PKG_VERSION")); )*)+
            }
            extern "C" fn __ceilo_plugin_list(
            ) -> __sabi::std_types::RResult<__abi::PluginList, $crate::PluginError> {
                __abi::glue::plugin_list(__ceilo_fill)
            }
            extern "C" fn __ceilo_trait_list() -> __sabi::std_types::RResult<
                __sabi::std_types::RVec<__abi::TraitPluginDescriptor>,
                $crate::PluginError,
            > {
                __abi::glue::trait_list(__ceilo_fill)
            }
            fn __ceilo_root_module() -> __abi::PluginLibraryRef {
                __abi::glue::root_module(__ceilo_plugin_list, __ceilo_trait_list)
            }

            // What abi_stable's `#[export_root_module]` writes, spelled out so that a
            // plugin crate needs no direct dependency on abi_stable. The symbol name is
            // checked against abi_stable's in plugin-api's tests.
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __CEILO_LIB_HEADER: __sabi::library::LibHeader = {
                extern "C" fn __erased() -> __sabi::library::RootModuleResult {
                    __sabi::library::__call_root_module_loader(__ceilo_root_module)
                }
                unsafe {
                    __sabi::library::LibHeader::from_constructor::<__abi::PluginLibraryRef>(
                        __erased,
                        __sabi::library::CheckTypeLayout::Yes,
                    )
                }
            };
        };
    };
}

/// Exports plugins for a given older ABI module (1.0–1.2, whose root module lists
/// one plugin list), as an older `plugin-api` would have; plugin authors use
/// [`export_plugins!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugins_for_abi {
    ($abi:ident; $($kind:ident : [$($ty:ty),* $(,)?]),+ $(,)?) => {
        const _: () = {
            use $crate::__private::abi_stable as __sabi;

            extern "C" fn __ceilo_plugin_list() -> __sabi::std_types::RResult<
                $crate::abi::$abi::PluginList,
                $crate::PluginError,
            > {
                $crate::abi::$abi::glue::plugin_list(|__list| {
                    $($( __list.$kind::<$ty>(env!("CARGO_PKG_VERSION")); )*)+
                })
            }

            fn __ceilo_root_module() -> $crate::abi::$abi::PluginLibraryRef {
                $crate::abi::$abi::glue::root_module(__ceilo_plugin_list)
            }

            // What abi_stable's `#[export_root_module]` writes, spelled out so that a
            // plugin crate needs no direct dependency on abi_stable. The symbol name is
            // checked against abi_stable's in plugin-api's tests.
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __CEILO_LIB_HEADER: __sabi::library::LibHeader = {
                extern "C" fn __erased() -> __sabi::library::RootModuleResult {
                    __sabi::library::__call_root_module_loader(__ceilo_root_module)
                }
                unsafe {
                    __sabi::library::LibHeader::from_constructor::<
                        $crate::abi::$abi::PluginLibraryRef,
                    >(__erased, __sabi::library::CheckTypeLayout::Yes)
                }
            };
        };
    };
}
