using Gateway.Protocols;
using Gateway.Storage;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Host;

/// <summary>
/// Start-up failures caused by something else on the machine (a port or the data directory
/// taken by another process): one line naming the key. They can clear up, so the exit status
/// lets systemd try again.
/// </summary>
internal static class StartupError
{
    public static string? Describe(Exception exception, GatewayEndpoints? endpoints)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case StoreInUseException inUse:
                    return $"Storage:DataDirectory: {inUse.Message}";
                case IOException { InnerException: AddressInUseException } bind:
                    // "Failed to bind to address http://127.0.0.1:1883: address already in use."
                    foreach (var listener in endpoints?.Names ?? [])
                    {
                        if (bind.Message.Contains("//" + endpoints!.Describe(listener) + ":", StringComparison.Ordinal))
                        {
                            return $"{endpoints.PortKeyOf(listener)}: {endpoints.Describe(listener)} is already in use by another process";
                        }
                    }

                    return bind.Message;
            }
        }

        return null;
    }
}
