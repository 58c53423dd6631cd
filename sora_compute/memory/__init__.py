"""Memory planning: weights, gradients, optimizer state, activations, parallel layouts, inference peaks."""
