using System.Net.Sockets;

namespace Gateway.Fuzz.Tests;

/// <summary>How one case's connection ended.</summary>
internal enum CaseOutcome
{
    /// <summary>The gateway closed (or reset) the connection after the input ended.</summary>
    Closed,

    /// <summary>The gateway kept the connection open past the bound after the input ended.</summary>
    Hung,
}

/// <summary>
/// Sends one case on a fresh TCP connection to the gateway's MQTT listener, ends the input (a
/// FIN, as a client that goes away), and reads whatever comes back until the gateway closes.
/// </summary>
internal static class FuzzTarget
{
    public static async Task<(CaseOutcome Outcome, int Received)> RunAsync(int port, byte[] bytes, TimeSpan closeTimeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None, cancellationToken);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // The gateway refused the input part-way and closed: that is an outcome, not a failure.
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(closeTimeout);
        var buffer = new byte[16 * 1024];
        var received = 0;
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (read == 0)
                {
                    return (CaseOutcome.Closed, received);
                }

                received += read;
            }
        }
        catch (SocketException)
        {
            return (CaseOutcome.Closed, received); // reset counts as closed
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (CaseOutcome.Hung, received);
        }
    }
}
