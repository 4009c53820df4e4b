namespace Gateway.Uplinks;

/// <summary>The broker failed a publish for now (<see cref="FailureKind.Transient"/>): the session ends and the link is re-established.</summary>
internal sealed class CloudPublishException : Exception
{
    public CloudPublishException()
    {
    }

    public CloudPublishException(string message)
        : base(message)
    {
    }

    public CloudPublishException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
