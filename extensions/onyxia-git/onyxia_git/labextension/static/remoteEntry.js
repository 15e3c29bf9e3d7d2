/*
 * @onyxia-hub/git: the start-time git clone or update of an Onyxia Hub server, shown in
 * JupyterLab's notification center.
 *
 * Written by hand, without a build: JupyterLab 4 loads a prebuilt extension by running
 * its `load` script, then asks the container the script registers in
 * `window._JUPYTERLAB[<package name>]` for the module `./extension` (`init(shareScope)`,
 * then `get(module)` returning a factory). A container of one plugin that imports
 * nothing needs no webpack: the plugin reaches JupyterLab through the application object
 * and its commands (`apputils:notify`, `apputils:update-notification`).
 *
 * The plugin reads `<base_url>onyxia-git/status` (the onyxia_git server extension) once a
 * second while the pull runs, and shows one notification: in progress, then done (closes
 * by itself) or failed (stays until dismissed). A finished pull is shown once per browser.
 * The same answer carries the init scripts' outcome (`init`, onyxia_git/init.py): a
 * failed one is shown once per browser too, and stays until dismissed.
 */
(function () {
  'use strict';
  var NAME = '@onyxia-hub/git';
  var POLL_MS = 1000;
  var GIVE_UP_MS = 15 * 60 * 1000;
  var TYPES = {
    running: 'in-progress',
    done: 'success',
    skipped: 'info',
    failed: 'error',
    refused: 'error'
  };

  function activate(app) {
    var settings = app.serviceManager.serverSettings;
    var url = settings.baseUrl.replace(/\/?$/, '/') + 'onyxia-git/status';
    var headers = settings.token ? { Authorization: 'token ' + settings.token } : {};
    var shown = null; // the notification's id
    var began = Date.now();

    function seenKey(status) {
      return 'onyxia-git:' + status.id;
    }

    function show(status) {
      var type = TYPES[status.state] || 'info';
      var autoClose = type === 'success' || type === 'info' ? 8000 : false;
      if (shown === null) {
        return app.commands
          .execute('apputils:notify', {
            message: status.message,
            type: type,
            options: { autoClose: autoClose, data: { onyxiaGit: status.id } }
          })
          .then(function (id) {
            shown = id;
          });
      }
      return app.commands.execute('apputils:update-notification', {
        id: shown,
        message: status.message,
        type: type,
        autoClose: autoClose
      });
    }

    var initChecked = false;

    function showInit(init) {
      if (!init || init.state !== 'failed') {
        return;
      }
      var key = 'onyxia-init:' + init.id;
      if (window.localStorage.getItem(key)) {
        return;
      }
      window.localStorage.setItem(key, String(Date.now()));
      app.commands.execute('apputils:notify', {
        message: init.message,
        type: 'error',
        options: { autoClose: false, data: { onyxiaInit: init.id } }
      });
    }

    function poll() {
      fetch(url, { credentials: 'same-origin', headers: headers })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (status) {
          if (status && !initChecked) {
            initChecked = true;
            showInit(status.init);
          }
          if (!status || status.state === 'none' || !status.id) {
            return;
          }
          var done = status.state !== 'running';
          if (done && window.localStorage.getItem(seenKey(status))) {
            return;
          }
          return show(status).then(function () {
            if (done) {
              window.localStorage.setItem(seenKey(status), String(Date.now()));
            } else if (Date.now() - began < GIVE_UP_MS) {
              window.setTimeout(poll, POLL_MS);
            }
          });
        })
        .catch(function (error) {
          console.warn(NAME + ': the git pull status could not be read', error);
        });
    }

    app.restored.then(poll);
  }

  var plugin = {
    id: NAME + ':pull-status',
    description: 'Shows the start-time git clone or update as a notification.',
    autoStart: true,
    activate: activate
  };

  var container = {
    init: function () {
      return Promise.resolve();
    },
    get: function (module) {
      if (module === './extension' || module === './index') {
        return Promise.resolve(function () {
          return { __esModule: true, default: [plugin] };
        });
      }
      return Promise.reject(new Error('Module ' + module + ' does not exist in ' + NAME));
    }
  };

  var registry = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  registry[NAME] = container;
})();
