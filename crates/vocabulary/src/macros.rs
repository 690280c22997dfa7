//! Declarative macros that turn one declaration into a Rust type, its schema and its
//! argument validator.

/// Declares a QAPI struct: a serde type with wire names, plus [`Schema`] and
/// [`FromArg`] implementations. Optional members are written `Option<T>`.
///
/// [`Schema`]: crate::schema::Schema
/// [`FromArg`]: crate::args::FromArg
macro_rules! qapi_struct {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident as $wire:literal {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident : $fty:ty = $fwire:literal
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                #[serde(rename = $fwire, default, skip_serializing_if = "guestlink_vocabulary::args::Field::is_absent")]
                pub $field: $fty,
            )*
        }

        impl $crate::schema::Schema for $name {
            fn schema() -> $crate::schema::TypeDesc {
                $crate::schema::TypeDesc::Struct {
                    name: $wire,
                    doc: concat!($($doc, "\n"),*),
                    members: vec![$(
                        $crate::schema::MemberDesc {
                            name: $fwire,
                            optional: <$fty as $crate::args::Field>::OPTIONAL,
                            ty: <$fty as $crate::args::Field>::field_schema(),
                            doc: concat!($($fdoc, "\n"),*),
                        }
                    ),*],
                }
            }
        }

        impl $crate::args::FromArg for $name {
            #[allow(unused_mut)]
            fn from_arg(
                value: serde_json::Value,
                path: &$crate::args::Path<'_>,
            ) -> Result<Self, $crate::args::ArgError> {
                let mut map = $crate::args::expect_object(value, path)?;
                $(
                    let $field = <$fty as $crate::args::Field>::take(
                        map.shift_remove($fwire),
                        &path.member($fwire),
                    )?;
                )*
                $crate::args::reject_leftovers(map, path)?;
                Ok($name { $($field),* })
            }
        }
    };
}

/// Declares a QAPI enum: a serde type with wire names, plus `as_str`, [`Schema`] and
/// [`FromArg`].
///
/// [`Schema`]: crate::schema::Schema
/// [`FromArg`]: crate::args::FromArg
#[allow(unused_macros)]
macro_rules! qapi_enum {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident as $wire:literal {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $vwire:literal ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[doc = $vdoc])* #[serde(rename = $vwire)] $variant ),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $vwire),* }
            }

            /// The value with this wire name.
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($vwire => Some($name::$variant),)* _ => None }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ALL[0]
            }
        }

        impl $crate::schema::Schema for $name {
            fn schema() -> $crate::schema::TypeDesc {
                $crate::schema::TypeDesc::Enum { name: $wire, values: &[$($vwire),*] }
            }
        }

        impl $crate::args::FromArg for $name {
            fn from_arg(
                value: serde_json::Value,
                path: &$crate::args::Path<'_>,
            ) -> Result<Self, $crate::args::ArgError> {
                let s = String::from_arg(value, path)?;
                Self::from_wire(&s).ok_or_else(|| $crate::args::ArgError::BadEnumValue {
                    name: path.leaf_name(),
                    value: s,
                })
            }
        }
    };
}
