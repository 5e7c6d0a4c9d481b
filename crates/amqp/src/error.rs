//! Why bytes are not valid AMQP 0-9-1, and the reply codes the protocol answers with.

/// A reply code of `connection.close`, `channel.close` and `basic.return`.
///
/// The codes AMQP 0-9-1 defines; [`ReplyCode::is_hard`] tells connection exceptions from
/// channel exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyCode {
    /// 200: a normal close.
    ReplySuccess,
    /// 311: `basic.return` of a message too large for the receiver.
    ContentTooLarge,
    /// 312: `basic.return` of a mandatory message that reached no queue.
    NoRoute,
    /// 313: `basic.return` of an immediate message with no consumer.
    NoConsumers,
    /// 320: the server is shutting down (an operator's action).
    ConnectionForced,
    /// 402: the virtual host or path is not valid.
    InvalidPath,
    /// 403: no access to a resource (login, or a method this endpoint refuses).
    AccessRefused,
    /// 404: the queue or exchange does not exist.
    NotFound,
    /// 405: the resource is locked by another client.
    ResourceLocked,
    /// 406: a precondition of the method failed (an unknown delivery tag, a message too large).
    PreconditionFailed,
    /// 501: a malformed frame.
    FrameError,
    /// 502: a frame whose method arguments or properties do not parse.
    SyntaxError,
    /// 503: a method that is not valid here (a connection method on a data channel, ...).
    CommandInvalid,
    /// 504: a channel that is not open, or is opened twice.
    ChannelError,
    /// 505: a frame of a kind not expected now (a body without a header, ...).
    UnexpectedFrame,
    /// 506: the server ran out of a resource.
    ResourceError,
    /// 530: the client tried something it is not allowed (a reused consumer tag, a bad
    /// tune value, an unknown virtual host).
    NotAllowed,
    /// 540: a method or feature this server does not implement.
    NotImplemented,
    /// 541: an internal error.
    InternalError,
}

impl ReplyCode {
    /// The numeric code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::ReplySuccess => 200,
            Self::ContentTooLarge => 311,
            Self::NoRoute => 312,
            Self::NoConsumers => 313,
            Self::ConnectionForced => 320,
            Self::InvalidPath => 402,
            Self::AccessRefused => 403,
            Self::NotFound => 404,
            Self::ResourceLocked => 405,
            Self::PreconditionFailed => 406,
            Self::FrameError => 501,
            Self::SyntaxError => 502,
            Self::CommandInvalid => 503,
            Self::ChannelError => 504,
            Self::UnexpectedFrame => 505,
            Self::ResourceError => 506,
            Self::NotAllowed => 530,
            Self::NotImplemented => 540,
            Self::InternalError => 541,
        }
    }

    /// The constant's name as AMQP 0-9-1 spells it (used in reply texts, as other servers do).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReplySuccess => "REPLY_SUCCESS",
            Self::ContentTooLarge => "CONTENT_TOO_LARGE",
            Self::NoRoute => "NO_ROUTE",
            Self::NoConsumers => "NO_CONSUMERS",
            Self::ConnectionForced => "CONNECTION_FORCED",
            Self::InvalidPath => "INVALID_PATH",
            Self::AccessRefused => "ACCESS_REFUSED",
            Self::NotFound => "NOT_FOUND",
            Self::ResourceLocked => "RESOURCE_LOCKED",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::FrameError => "FRAME_ERROR",
            Self::SyntaxError => "SYNTAX_ERROR",
            Self::CommandInvalid => "COMMAND_INVALID",
            Self::ChannelError => "CHANNEL_ERROR",
            Self::UnexpectedFrame => "UNEXPECTED_FRAME",
            Self::ResourceError => "RESOURCE_ERROR",
            Self::NotAllowed => "NOT_ALLOWED",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    /// A connection exception ("hard error"): the whole connection is closed. The others
    /// (403 to 406) close only the channel.
    pub const fn is_hard(self) -> bool {
        matches!(
            self,
            Self::ConnectionForced
                | Self::InvalidPath
                | Self::FrameError
                | Self::SyntaxError
                | Self::CommandInvalid
                | Self::ChannelError
                | Self::UnexpectedFrame
                | Self::ResourceError
                | Self::NotAllowed
                | Self::NotImplemented
                | Self::InternalError
        )
    }
}

/// Why bytes are not a valid AMQP 0-9-1 frame, method or content header.
///
/// `Copy + Eq`, so a driver can count and compare them without allocating.
/// [`DecodeError::reply_code`] is the code the connection is closed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first eight bytes are not `AMQP 0 0 9 1`.
    #[error("not an AMQP 0-9-1 protocol header")]
    BadProtocolHeader,
    /// A frame type other than method (1), header (2), body (3) or heartbeat (8).
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// The frame announces a payload larger than the negotiated frame size allows.
    #[error("frame of {size} bytes exceeds the frame maximum of {max}")]
    FrameTooLarge {
        /// The whole frame's size as announced (7-byte header and end octet included).
        size: u64,
        /// The negotiated maximum.
        max: u32,
    },
    /// The octet after the payload is not the frame end `0xCE`.
    #[error("frame end octet {0:#04x} instead of 0xce")]
    BadFrameEnd(u8),
    /// A heartbeat frame on a channel other than 0, or with a payload.
    #[error("malformed heartbeat frame")]
    BadHeartbeat,
    /// A method frame names a class and method AMQP 0-9-1 does not define.
    #[error("unknown method {class_id}.{method_id}")]
    UnknownMethod {
        /// The class id.
        class_id: u16,
        /// The method id.
        method_id: u16,
    },
    /// A field runs past the end of its frame or table.
    #[error("a field runs past the end of its frame")]
    UnexpectedEnd,
    /// Bytes remain after the last field of a method or content header.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// A short string (a name) is not UTF-8.
    #[error("short string is not valid UTF-8")]
    InvalidUtf8,
    /// A field table or array holds a value type this codec does not know.
    #[error("unknown field value type {0:#04x}")]
    UnknownFieldType(u8),
    /// Field tables and arrays nest deeper than [`MAX_TABLE_DEPTH`](crate::MAX_TABLE_DEPTH).
    #[error("field tables nested too deeply")]
    TooDeep,
    /// A content header's class is not `basic` (60), or its weight is not 0.
    #[error("content header of class {0} (only basic, 60, carries content)")]
    BadContentClass(u16),
    /// The property flags set bits no basic property uses (including the continuation bit).
    #[error("property flags {0:#06x} set unused bits")]
    BadPropertyFlags(u16),
}

impl DecodeError {
    /// The reply code a server closes the connection with: 501 for a malformed frame, 540 for
    /// an unknown method, 502 for fields that do not parse.
    pub const fn reply_code(self) -> ReplyCode {
        match self {
            Self::BadProtocolHeader
            | Self::UnknownFrameType(_)
            | Self::FrameTooLarge { .. }
            | Self::BadFrameEnd(_)
            | Self::BadHeartbeat => ReplyCode::FrameError,
            Self::UnknownMethod { .. } => ReplyCode::NotImplemented,
            Self::UnexpectedEnd
            | Self::TrailingBytes
            | Self::InvalidUtf8
            | Self::UnknownFieldType(_)
            | Self::TooDeep
            | Self::BadContentClass(_)
            | Self::BadPropertyFlags(_) => ReplyCode::SyntaxError,
        }
    }
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A short string (a name, a table key) longer than 255 bytes.
    #[error("short string of {0} bytes (at most 255)")]
    ShortStrTooLong(usize),
    /// A long string, table or array longer than 4 GiB.
    #[error("field of {0} bytes does not fit a 32-bit length")]
    TooLong(usize),
    /// Tables and arrays nested deeper than [`MAX_TABLE_DEPTH`](crate::MAX_TABLE_DEPTH).
    #[error("field tables nested too deeply")]
    TooDeep,
}
