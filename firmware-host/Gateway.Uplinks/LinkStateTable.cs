using Gateway.Routing;

namespace Gateway.Uplinks;

/// <summary>What happens to a link, as the forwarder sees it.</summary>
internal enum LinkEvent
{
    /// <summary>The uplink opened its buffer (at start).</summary>
    Opened,

    /// <summary>A session is up both ways.</summary>
    Connected,

    /// <summary>A connect attempt failed for any reason but refused credentials, or the link dropped before it was ready.</summary>
    Unreachable,

    /// <summary>The broker refused the credentials or client id.</summary>
    Refused,

    /// <summary>The broker confirmed a publish.</summary>
    Confirmed,

    /// <summary>No confirmation within the stall bound.</summary>
    Stalled,

    /// <summary>The session ended (lost, stalled, returning to the primary, stopping).</summary>
    Lost,

    /// <summary>More than the in-flight window waits in the buffer.</summary>
    BacklogHigh,

    /// <summary>No more than the in-flight window waits in the buffer.</summary>
    BacklogLow,
}

/// <summary>
/// The link state machine, all of it: state × event → state (as iotedge's
/// <c>EndpointExecutorFsm</c>). <c>Stalled</c> holds through reconnects until the broker confirms
/// something again; <c>Failed</c> holds until a connect gets past the credentials.
/// </summary>
internal static class LinkStateTable
{
    private const LinkState U = LinkState.Unknown;
    private const LinkState C = LinkState.Connected;
    private const LinkState B = LinkState.Buffering;
    private const LinkState D = LinkState.Draining;
    private const LinkState S = LinkState.Stalled;
    private const LinkState F = LinkState.Failed;

    // Rows: the current state, in LinkState order. Columns: the event, in LinkEvent order:
    //   Opened Connected Unreachable Refused Confirmed Stalled Lost BacklogHigh BacklogLow
    private static readonly LinkState[][] Table =
    [
        /* Unknown   */ [B, C, B, F, U, S, B, U, U],
        /* Connected */ [C, C, B, F, C, S, B, D, C],
        /* Buffering */ [B, C, B, F, B, S, B, B, B],
        /* Draining  */ [D, D, B, F, D, S, B, D, C],
        /* Stalled   */ [S, S, S, F, C, S, S, S, S],
        /* Failed    */ [F, C, B, F, F, S, F, F, F],
    ];

    public static LinkState Next(LinkState state, LinkEvent linkEvent) => Table[(int)state][(int)linkEvent];
}
