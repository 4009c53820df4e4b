using System.Diagnostics.CodeAnalysis;

namespace Gateway.Protocols;

/// <summary>
/// A peer broke its protocol. Each protocol's subclass carries the reply to send (an MQTT
/// reason code, a STOMP ERROR, an AMQP reply code) before the connection is closed; the
/// message is for the log and never echoes the peer's bytes unescaped.
/// </summary>
public abstract class ProtocolException : Exception
{
    protected ProtocolException(string message)
        : base(message)
    {
    }

    protected ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A frame declared a length over the configured limit; refused before anything was buffered.</summary>
public sealed class FrameTooLargeException : ProtocolException
{
    public FrameTooLargeException(long length, long limit)
        : base($"a {length}-byte frame, over the {limit}-byte limit")
    {
        Length = length;
        Limit = limit;
    }

    public FrameTooLargeException(string message)
        : base(message)
    {
    }

    public FrameTooLargeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public FrameTooLargeException()
        : base("a frame over the size limit")
    {
    }

    public long Length { get; }

    public long Limit { get; }

    /// <summary>Checks a declared length against the limit before any of it is read or allocated.</summary>
    public static void ThrowIfTooLarge(long length, long limit)
    {
        if (length > limit)
        {
            Throw(length, limit);
        }
    }

    [DoesNotReturn]
    private static void Throw(long length, long limit) => throw new FrameTooLargeException(length, limit);
}
