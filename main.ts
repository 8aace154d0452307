console.log("vmq-sidecar");
