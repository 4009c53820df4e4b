using System.Net.Sockets;

namespace Gateway.Uplinks;

/// <summary>Whether an endpoint takes TCP connections again (a sink's cheap check before returning to the primary).</summary>
internal static class TcpProbe
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public static async Task<bool> IsReachableAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(Timeout);
        try
        {
            await socket.ConnectAsync(endpoint.Host, endpoint.Port, attempt.Token);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false; // still down
        }
    }
}
