// The portal's script: a Copy button next to every value an admin pastes into an identity
// provider or a tool (elements with class "copy"), and times in the browser's time zone.
// Without JavaScript the values stay selectable text and the times UTC.
(function () {
  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.querySelectorAll('code.copy').forEach(function (code) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy-button';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy ' + code.textContent);
    button.addEventListener('click', function () {
      var text = code.textContent;
      var said = function (words) {
        button.textContent = words;
        setTimeout(function () { button.textContent = 'Copy'; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { said('Copied'); }, function () {
          select(code);
          said('Selected: press Cmd+C');
        });
      } else {
        select(code);
        said('Selected: press Cmd+C');
      }
    });
    code.insertAdjacentElement('afterend', button);
  });
})();
// Times in the browser's time zone; the UTC time the page was written with stays on hover.
(function () {
  document.querySelectorAll('time.local[datetime]').forEach(function (t) {
    var utc = t.getAttribute('datetime');
    var d = new Date(utc);
    if (isNaN(d.getTime())) { return; }
    t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    t.title = utc + ' (UTC)';
  });
})();
