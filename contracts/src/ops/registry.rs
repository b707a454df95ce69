//! The macro that turns the registry's list of `tag => Type` lines into the `Operation` enum,
//! its JSON view, and every dispatch over them, so that each is a generated `match` the compiler
//! checks for every registered operation.

/// Generates, from `tag => Type` lines: the `Operation` enum (one newtype variant per type),
/// its canonical encoding and decoding by tag, the rule dispatch, transfer ids, admission
/// needs, event parties, and the `OperationView` enum tagged by `type` (the type's name in
/// snake_case). A repeated type fails as a repeated variant; a repeated tag fails the constant
/// check below.
macro_rules! registry {
    ($($tag:literal => $name:ident,)+) => {
        /// One ledger operation.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Operation {
            $(
                #[doc = concat!("The [`", stringify!($name), "`] operation.")]
                $name($name),
            )+
        }

        $(
            impl $crate::ops::interface::Registered for $name {
                const TAG: u8 = $tag;
            }

            impl From<$name> for Operation {
                fn from(operation: $name) -> Self {
                    Operation::$name(operation)
                }
            }
        )+

        // Two operations with one tag would decode as the first: refused at compile time.
        const _: () = {
            let tags: &[u8] = &[$($tag),+];
            let mut index = 0;
            while index < tags.len() {
                let mut other = index + 1;
                while other < tags.len() {
                    assert!(tags[index] != tags[other], "two operations share a tag");
                    other += 1;
                }
                index += 1;
            }
        };

        impl Operation {
            /// Its tag byte on the wire.
            pub fn tag(&self) -> u8 {
                match self {
                    $(Operation::$name(_) => $tag,)+
                }
            }

            /// The transfer id this operation records, if it records one.
            pub fn transfer_id(&self) -> Option<$crate::model::TransferId> {
                match self {
                    $(Operation::$name(operation) => operation.transfer_id(),)+
                }
            }

            /// What admission checks of it before ordering.
            pub fn needs(&self) -> $crate::ops::interface::Needs {
                match self {
                    $(Operation::$name(operation) => operation.needs(),)+
                }
            }

            /// Adds the participants its settled event concerns.
            pub fn parties<L: $crate::ops::interface::PartyLookup>(
                &self,
                parties: &mut $crate::ops::interface::Parties<'_, L>,
            ) -> Result<(), L::Error> {
                match self {
                    $(Operation::$name(operation) => operation.parties(parties),)+
                }
            }

            /// Canonical encoding: tag u8 | the operation's fields.
            pub fn encode(&self, writer: &mut $crate::codec::Writer) {
                writer.u8(self.tag());
                match self {
                    $(Operation::$name(operation) => operation.encode_fields(writer),)+
                }
            }

            /// Reads an operation written by [`Operation::encode`]; an unregistered tag is
            /// malformed.
            pub fn decode(
                reader: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::codec::DecodeError> {
                Ok(match reader.u8("operation.tag")? {
                    $($tag => Operation::$name($name::decode_fields(reader)?),)+
                    unregistered => {
                        return Err($crate::codec::DecodeError::InvalidValue {
                            field: "operation.tag",
                            value: unregistered.into(),
                        })
                    }
                })
            }

            /// blake3 of the canonical bytes: what idempotent retries are compared by.
            pub fn body_hash(&self) -> $crate::model::Hash {
                match self {
                    $(Operation::$name(operation) => $crate::ops::interface::body_hash(operation),)+
                }
            }

            /// Checks the operation's rules in their fixed order and writes its effects.
            pub(crate) fn apply(
                &self,
                overlay: &mut $crate::overlay::Overlay<'_>,
                context: &$crate::context::OperationContext<'_>,
            ) -> Result<$crate::context::Outcome, $crate::context::ApplyError> {
                match self {
                    $(Operation::$name(operation) => operation.apply(overlay, context),)+
                }
            }

            /// What its rejected transfer record names.
            pub(crate) fn rejected(&self) -> $crate::posting::RejectedTransfer {
                match self {
                    $(Operation::$name(operation) => operation.rejected(),)+
                }
            }

            /// Its code in a retried linked batch when it has no transfer id.
            pub(crate) fn retried_code(
                &self,
                overlay: &$crate::overlay::Overlay<'_>,
                batch_code: $crate::result::ResultCode,
            ) -> Result<$crate::result::ResultCode, $crate::context::ApplyError> {
                match self {
                    $(Operation::$name(operation) => operation.retried_code(overlay, batch_code),)+
                }
            }
        }

        /// One operation's JSON view, tagged by `type`: the operation's name in snake_case.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum OperationView {
            $(
                #[doc = concat!("The view of [`", stringify!($name), "`].")]
                $name(<$name as $crate::ops::interface::LedgerOperation>::View),
            )+
        }

        impl From<&Operation> for OperationView {
            fn from(operation: &Operation) -> Self {
                match operation {
                    $(Operation::$name(operation) => OperationView::$name(operation.to_view()),)+
                }
            }
        }

        impl OperationView {
            /// The operation this view describes.
            pub fn to_operation(&self) -> Result<Operation, String> {
                Ok(match self {
                    $(OperationView::$name(view) => Operation::$name($name::from_view(view)?),)+
                })
            }
        }
    };
}

pub(crate) use registry;
