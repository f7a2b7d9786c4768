import torch

from logreg_exp.training.model import LogisticRegression, SigmoidBCELoss


def test_parameters_shapes_and_initialisation():
    model = LogisticRegression(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert model.w.shape == (3, 1) and model.bias.shape == (1,)
    assert torch.equal(model.bias, torch.zeros(1, dtype=torch.float64))
    expected = torch.randn(3, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(model.w.detach(), expected)


def test_initial_weights_are_standard_normal():
    w = LogisticRegression(20_000, generator=torch.Generator().manual_seed(1)).w.detach()
    assert abs(w.mean().item()) < 0.03 and abs(w.std().item() - 1) < 0.03


def small_model():
    model = LogisticRegression(2, dtype=torch.float64)
    with torch.no_grad():
        model.w.copy_(torch.tensor([[0.5], [-2.0]]))
        model.bias.fill_(0.25)
    return model


X = torch.tensor([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)


def test_forward_is_the_linear_score_and_proba_its_sigmoid():
    model = small_model()
    by_hand = [0.5 * 1 - 2 * 2 + 0.25, 0.5 * -3 - 2 * 0.5 + 0.25, 0.25]
    torch.testing.assert_close(model(X), torch.tensor(by_hand, dtype=torch.float64))
    p = [1 / (1 + torch.exp(torch.tensor(-s, dtype=torch.float64))) for s in by_hand]
    torch.testing.assert_close(model.predict_proba(X), torch.stack(p))
    assert model.predict(X).tolist() == [0.0, 0.0, 1.0]


def test_gradients_match_the_hand_derivation():
    # mean BCE of sigmoid(s): dL/dw = X^T (p - y) / n, dL/db = mean(p - y)
    for loss_fn in (torch.nn.BCEWithLogitsLoss(), SigmoidBCELoss()):
        model = small_model()
        loss_fn(model(X), Y).backward()
        residual = torch.sigmoid(X @ model.w.detach().squeeze(1) + 0.25) - Y
        torch.testing.assert_close(model.w.grad, (X.T @ residual / 3).unsqueeze(1))
        torch.testing.assert_close(model.bias.grad, residual.mean().reshape(1))


def test_sigmoid_bce_equals_bce_with_logits():
    scores = torch.linspace(-5, 5, 11, dtype=torch.float64)
    target = (torch.arange(11) % 2).to(torch.float64)
    torch.testing.assert_close(
        SigmoidBCELoss()(scores, target), torch.nn.BCEWithLogitsLoss()(scores, target)
    )
